"""Model folders and run records, for tools built on healthsynth (its own CLI among them).

* :func:`check_folder` — check a model folder (names, format version, what it holds) and
  return its folder path and ``generator.json``, with one-sentence errors;
* :func:`check_folder_names` — refuse table or file names from a folder that are not plain;
* :func:`read_json` — read a JSON file of a folder, a broken one named in one sentence;
* :func:`peak_rss_mb`, :func:`runtime_info` — the process's peak memory and the versions that
  go into every run record.
"""

from healthsynth.generators._folder import (
    check_folder,
    check_folder_names,
    peak_rss_mb,
    read_json,
    runtime_info,
)

__all__ = ["check_folder", "check_folder_names", "peak_rss_mb", "read_json", "runtime_info"]
