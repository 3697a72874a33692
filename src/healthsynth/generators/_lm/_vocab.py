"""Special tokens every healthsynth vocabulary starts with (no torch here)."""

from __future__ import annotations

__all__ = ["BOS", "PAD"]

#: Padding and start-of-sequence tokens: ids 0 and 1 of every slot and timeline vocabulary.
PAD, BOS = 0, 1
