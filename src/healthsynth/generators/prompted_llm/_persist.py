"""The prompted-llm model folder: what :meth:`PromptedLLM.save` writes and ``load`` reads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from healthsynth.errors import ModelFolderError, ParameterError
from healthsynth.generators._folder import (
    atomic_folder,
    jsonable,
    open_folder,
    read_json,
    write_common,
)
from healthsynth.generators.prompted_llm._domains import (
    domains_from_dict,
    schema_domains,
    with_domains,
)
from healthsynth.generators.prompted_llm._settings import CALL_ONLY_SETTINGS

__all__ = ["is_local", "load_folder", "save_folder", "saved_params"]

_FORMAT_VERSION = 1


def save_folder(gen: Any, path: Path) -> Path:
    """Write the model folder: settings, schema, the real rows (Parquet) and the rules."""
    with atomic_folder(path) as tmp:
        (tmp / "model").mkdir()
        gen.real_.to_parquet(tmp / "model" / "real.parquet", index=False)
        state: dict[str, Any] = {
            "max_tokens": gen.max_tokens_,
            "domains": {k: d.to_dict() for k, d in gen.domains_.items()},
        }
        if gen.rules_ is not None:
            state["rules"] = gen.rules_.to_dict()
        (tmp / "model" / "state.json").write_text(json.dumps(state), encoding="utf-8")
        write_common(
            tmp,
            name=gen.name,
            format_version=_FORMAT_VERSION,
            params=saved_params(gen),
            schema=gen.schema_,
            training=gen.training_record_,
        )
    return path


def load_folder(cls: Any, path: str | Path, *, endpoint: str | None, **call: Any) -> Any:
    """A generator of class ``cls`` from a model folder; ``call`` holds the call-only settings.

    The folder's endpoint is kept only when ``endpoint`` is None and it is on this machine.
    """
    folder, _, schema, params = open_folder(
        path, name=cls.name, format_version=_FORMAT_VERSION, param_names=cls._param_names()
    )
    stored = params.get("endpoint")
    for key in CALL_ONLY_SETTINGS:
        params.pop(key, None)
    try:
        self = cls(**params, endpoint=endpoint, **call)
    except TypeError as e:
        raise ModelFolderError(
            f"model folder {folder} is corrupted: its settings do not fit prompted-llm ({e})"
        ) from None
    if endpoint is None and isinstance(stored, str) and stored:
        if is_local(stored):
            self.endpoint = stored
        else:
            self.fitted_endpoint_ = stored
    _read_state(self, folder, schema)
    self.training_record_ = read_json(folder / "training.json", folder)
    return self


def _read_state(gen: Any, folder: Path, schema: Any) -> None:
    """Set the fitted attributes from ``model/``: real rows, token limit, rules, domains."""
    try:
        real = pd.read_parquet(folder / "model" / "real.parquet")
    except (OSError, ValueError) as e:
        raise ModelFolderError(
            f"model folder {folder} is corrupted: model/real.parquet cannot be read ({e})"
        ) from None
    missing = [c.name for c in schema.modelled if c.name not in real]
    if missing:
        raise ModelFolderError(
            f"model folder {folder} is corrupted: model/real.parquet lacks {', '.join(missing)}"
        )
    state = read_json(folder / "model" / "state.json", folder)
    gen.real_ = real
    gen.max_tokens_ = int(state.get("max_tokens", 1024))
    gen.rules_ = None
    if state.get("rules"):
        from healthsynth.knowledge import RuleSet

        gen.rules_ = RuleSet.from_dict(state["rules"])
    try:
        gen.domains_ = (
            domains_from_dict(state["domains"], schema)
            if isinstance(state.get("domains"), dict)
            else schema_domains(schema)
        )
    except ParameterError as e:
        raise ModelFolderError(f"model folder {folder} is corrupted: {e}") from None
    gen.schema_ = with_domains(schema, gen.domains_)


def saved_params(gen: Any) -> dict[str, Any]:
    """The settings as JSON (a code mapping by its name, dates as ISO text)."""
    params = gen.get_params()
    cmap = params.get("code_map")
    if cmap is not None and not isinstance(cmap, (str, Path)):
        params["code_map"] = getattr(cmap, "name", str(cmap))
    if params.get("domains") is not None:
        params["domains"] = {
            str(k): [v.isoformat() if hasattr(v, "isoformat") else v for v in pair]
            for k, pair in dict(params["domains"]).items()
        }
    return dict(jsonable(params))


def is_local(url: str) -> bool:
    """Whether ``url`` is on this machine (False for a URL the gate refuses)."""
    from healthsynth.llm import is_local_endpoint

    try:
        return is_local_endpoint(url)
    except ParameterError:
        return False  # a URL the gate refuses is never used
