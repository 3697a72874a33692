"""``python -m healthsynth`` runs the command line."""

from healthsynth.cli import main

main()
