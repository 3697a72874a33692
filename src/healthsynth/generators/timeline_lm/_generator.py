"""``timeline-lm``: a causal transformer trained from scratch on patient timelines.

Each patient is one token sequence (see :mod:`._codec`): static attributes and presence flags,
the day of the first event, then events in time order separated by time-gap tokens, each event
an item token and, for labs, value tokens. Sampling draws the static attributes first (with any
conditions fixed, as the tabular LM does), then the timeline under constraints that make every
timeline valid (see :mod:`._model`): time never goes backwards, nothing happens after the end of
follow-up (so nothing after death), sex- and age-specific codes fit the patient, lab values stay
in their plausible range, and the items of a cohort condition (``has=diabetes``) occur.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from healthsynth.data import Dataset, EventTable
from healthsynth.data._io import atomic_folder as data_atomic_folder
from healthsynth.errors import (
    ConditionError,
    DataError,
    ModelFolderError,
    NotFittedError,
    ParameterError,
)
from healthsynth.generators._base import progress_bar, warn
from healthsynth.generators._conditions import resolve_conditions
from healthsynth.generators._folder import (
    atomic_folder,
    check_folder_names,
    check_no_remote_code,
    jsonable,
    open_folder,
    peak_rss_mb,
    read_json,
    runtime_info,
    write_common,
)
from healthsynth.generators.timeline_lm._codec import UNSAID, TimelineCodec, flag_name

__all__ = ["TimelineLM"]

_FORMAT_VERSION = 1
MIN_PATIENTS = 20

_PARAMS: dict[str, tuple[Any, Any]] = {
    "epochs": (int, lambda v: v >= 1),
    "token_budget": (int, lambda v: v >= 64),
    "learning_rate": ((float, int), lambda v: v > 0),
    "n_embd": (int, lambda v: v >= 8),
    "n_layer": (int, lambda v: v >= 1),
    "n_head": (int, lambda v: v >= 1),
    "dropout": ((float, int), lambda v: 0 <= v < 1),
    "n_bins": (int, lambda v: v >= 2),
    "n_sub_bins": (int, lambda v: v >= 2),
    "max_discrete": (int, lambda v: v >= 0),
    "max_tokens": (int, lambda v: v >= 16),
    "max_flags": (int, lambda v: v >= 0),
    "validation_fraction": ((float, int), lambda v: 0 < v < 0.5),
    "patience": (int, lambda v: v >= 1),
    "perm_prob": ((float, int), lambda v: 0 <= v <= 1),
    "sample_batch_size": (int, lambda v: v >= 1),
    "temperature": ((float, int), lambda v: v > 0),
    "seed": (int, lambda v: True),
}


class TimelineLM:
    """Longitudinal patients (a patients table and event tables) from a timeline transformer.

    Parameters
    ----------
    epochs
        Most passes over the training patients; training stops earlier when the validation
        loss has not improved for ``patience`` epochs or ``max_time`` seconds have passed.
    token_budget
        Tokens per training batch (patients are grouped by length).
    learning_rate, dropout
        Optimiser step size (AdamW, warm-up then cosine decay) and dropout.
    n_embd, n_layer, n_head
        Width, depth and attention heads of the GPT-2 trained from scratch.
    n_bins, n_sub_bins, max_discrete
        Resolution of numbers: quantile bins and sub-bins; a value column with at most
        ``max_discrete`` distinct values gets one token per value.
    max_tokens
        Longest timeline in tokens (a lab result takes 3-5); longer training timelines are cut
        (the training record counts them) and sampled timelines stop there.
    max_flags
        Most items with a presence flag (the most frequent ones); only flagged items can be
        conditioned on with ``has=...``.
    validation_fraction
        Share of patients held out for early stopping.
    patience
        Epochs without improvement before stopping.
    perm_prob
        Share of training sequences whose static attributes come in a shuffled order, so that
        any of them can be conditioned on.
    max_time
        Wall-clock limit for training, in seconds.
    code_map
        Mapping of items to ICD-10-CM / LOINC codes (a :class:`healthsynth.knowledge.CodeMap`,
        a packaged name such as ``"nafld"``, or a CSV path): its sex- and age-specific codes
        and plausible lab ranges constrain sampling.
    sample_batch_size
        Patients decoded at once.
    temperature
        Sampling temperature.
    seed
        Seed for the split, initialization and training order.
    verbose
        Show a progress bar.
    """

    name: ClassVar[str] = "timeline-lm"
    pickled: ClassVar[bool] = False
    data_kind: ClassVar[str] = "timelines"

    def __init__(
        self,
        *,
        epochs: int = 30,
        token_budget: int = 12_000,
        learning_rate: float = 2e-3,
        n_embd: int = 96,
        n_layer: int = 3,
        n_head: int = 4,
        dropout: float = 0.1,
        n_bins: int = 32,
        n_sub_bins: int = 16,
        max_discrete: int = 256,
        max_tokens: int = 512,
        max_flags: int = 64,
        validation_fraction: float = 0.1,
        patience: int = 3,
        perm_prob: float = 0.5,
        max_time: float | None = None,
        code_map: Any = None,
        sample_batch_size: int = 1024,
        temperature: float = 1.0,
        seed: int = 0,
        verbose: bool = False,
    ) -> None:
        self.epochs = epochs
        self.token_budget = token_budget
        self.learning_rate = learning_rate
        self.n_embd = n_embd
        self.n_layer = n_layer
        self.n_head = n_head
        self.dropout = dropout
        self.n_bins = n_bins
        self.n_sub_bins = n_sub_bins
        self.max_discrete = max_discrete
        self.max_tokens = max_tokens
        self.max_flags = max_flags
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.perm_prob = perm_prob
        self.max_time = max_time
        self.code_map = code_map
        self.sample_batch_size = sample_batch_size
        self.temperature = temperature
        self.seed = seed
        self.verbose = verbose

    # -- settings -------------------------------------------------------------------------
    def get_params(self) -> dict[str, Any]:
        """The constructor settings."""
        import inspect

        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {k: getattr(self, k) for k in names}

    def _json_params(self) -> dict[str, Any]:
        """The settings as JSON (a code mapping given as an object is named)."""
        params = self.get_params()
        mapping = getattr(self, "code_map_", None)
        if mapping is not None:
            params["code_map"] = mapping.name
        elif params["code_map"] is not None and not isinstance(params["code_map"], (str, Path)):
            params["code_map"] = getattr(params["code_map"], "name", str(params["code_map"]))
        return dict(jsonable(params))

    def _validate_params(self) -> None:
        for name, (types, ok) in _PARAMS.items():
            v = getattr(self, name)
            allowed = types if isinstance(types, tuple) else (types,)
            if isinstance(v, bool) or not isinstance(v, allowed) or not ok(v):
                raise ParameterError(
                    f"parameter '{name}' of timeline-lm has an invalid value {v!r}"
                )
        if self.n_embd % self.n_head:
            raise ParameterError(
                f"parameter 'n_embd' ({self.n_embd}) must be a multiple of 'n_head' ({self.n_head})"
            )
        if self.max_time is not None and (
            isinstance(self.max_time, bool)
            or not isinstance(self.max_time, (int, float))
            or self.max_time <= 0
        ):
            raise ParameterError(
                f"parameter 'max_time' must be a positive number of seconds; got {self.max_time!r}"
            )

    def _check_fitted(self) -> None:
        if not hasattr(self, "codec_"):
            raise NotFittedError(
                "this TimelineLM is not fitted yet; call fit(dataset) or load(path) first"
            )

    # -- fit ------------------------------------------------------------------------------
    def fit(self, data: Dataset) -> TimelineLM:
        """Learn from a :class:`~healthsynth.data.Dataset` of patients and events."""
        import torch

        from healthsynth.generators.timeline_lm._model import _Data, build_model, train_model

        self._validate_params()
        if not isinstance(data, Dataset):
            raise DataError(
                "timeline-lm learns from a healthsynth.data.Dataset (a patients table and event "
                f"tables); got {type(data).__name__}"
            )
        if data.times_are_dates:
            raise DataError(
                f"timeline-lm needs event times as numbers of days from an index date; the "
                f"column '{data.time}' holds dates: subtract each patient's index date first"
            )
        if data.n_patients < MIN_PATIENTS:
            raise DataError(
                f"the patients table has {data.n_patients} patients; timeline-lm needs at least "
                f"{MIN_PATIENTS} to learn from"
            )
        started = time.perf_counter()
        cpu0 = time.process_time()
        code_map = _as_code_map(self.code_map)
        events = data.events()
        if code_map is not None:
            unknown = code_map.unmapped(events)
            if len(unknown):
                listed = ", ".join(
                    f"{t}/{i}" for t, i in zip(unknown["table"], unknown["item"], strict=True)
                )
                warn(
                    f"the code mapping '{code_map.name}' does not know {len(unknown)} item(s): "
                    f"{listed}; they are generated and exported under their own names"
                )
        codec = TimelineCodec.fit(
            data,
            n_bins=self.n_bins,
            n_sub_bins=self.n_sub_bins,
            max_discrete=self.max_discrete,
            max_flags=self.max_flags,
            max_tokens=self.max_tokens,
        )
        rng = np.random.default_rng(self.seed)
        static, toks, states, cut = codec.encode(data, rng)
        static = codec.hide_flags(static, rng)
        n = len(toks)
        perm = rng.permutation(n)
        n_val = int(min(max(self.validation_fraction * n, 10), n // 4))
        val_idx, train_idx = perm[:n_val], perm[n_val:]

        def part(idx: np.ndarray) -> _Data:
            return _Data(static[idx], [toks[i] for i in idx], [states[i] for i in idx])

        model = build_model(
            codec,
            n_embd=self.n_embd,
            n_layer=self.n_layer,
            n_head=self.n_head,
            dropout=float(self.dropout),
            seed=self.seed,
        )
        progress = progress_bar(self.verbose)
        with progress:
            record = train_model(
                model,
                codec,
                part(train_idx),
                part(val_idx),
                epochs=self.epochs,
                token_budget=self.token_budget,
                learning_rate=float(self.learning_rate),
                weight_decay=0.01,
                patience=self.patience,
                perm_prob=float(self.perm_prob),
                max_time=self.max_time,
                seed=self.seed,
                progress=progress if self.verbose else None,
            )
        if cut:
            warn(
                f"{cut} of {n} training timelines were longer than max_tokens={self.max_tokens} "
                "tokens and were cut; raise max_tokens to learn them whole"
            )
        self.codec_ = codec
        self.model_ = model
        self.code_map_ = code_map
        self.template_ = _template(data)
        self.schema_ = codec.static_schema
        lengths = np.array([len(t) for t in toks])
        self.training_record_ = {
            **record,
            "generator": self.name,
            "params": self._json_params(),
            "n_patients": int(n),
            "n_train_patients": int(len(train_idx)),
            "n_validation_patients": int(n_val),
            "n_events": int(len(events)),
            "n_items": len(codec.items),
            "n_flags": len(codec.flag_items),
            "timelines_cut": int(cut),
            "tokens_per_patient_mean": round(float(lengths.mean()), 2),
            "tokens_per_patient_max": int(lengths.max()),
            "vocab_size": codec.vocab_size,
            "n_parameters": int(sum(p.numel() for p in model.parameters())),
            "fit_seconds": round(time.perf_counter() - started, 3),
            "fit_cpu_seconds": round(time.process_time() - cpu0, 3),
            "peak_rss_mb": peak_rss_mb(),
            "torch_threads": torch.get_num_threads(),
            "runtime": runtime_info(),
        }
        return self

    # -- sample ---------------------------------------------------------------------------
    def sample(
        self,
        n: int,
        *,
        conditions: Mapping[str, Any] | None = None,
        seed: int | None = None,
        id_start: int = 0,
    ) -> Dataset:
        """Generate ``n`` patients with their timelines, as a Dataset shaped like the training one.

        ``conditions`` fixes static attributes (``{"sex": "female", "age": "60..70"}``) and
        asks for items (``{"has": "diabetes"}`` or ``{"has": ["diabetes", "htn"]}``: every
        patient has at least one such event). Patient IDs are numbered from ``id_start + 1``.
        """
        self._check_fitted()
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0:
            raise ParameterError(f"n must be a positive whole number of patients; got {n!r}")
        n = int(n)
        static_conds, required_items = self._resolve(conditions)
        seed = self.seed if seed is None else seed
        rng = np.random.default_rng(seed)
        import torch

        gen = torch.Generator().manual_seed(int(rng.integers(0, 2**31 - 1)))
        patients_parts: list[pd.DataFrame] = []
        event_parts: list[pd.DataFrame] = []
        got = 0
        tries = 0
        drawn, accepted = 0, 0
        while got < n:
            tries += 1
            need = n - got
            if required_items and drawn:
                # draw enough for the acceptance rate seen so far (at least 5 %)
                need = math.ceil(1.2 * need * drawn / max(accepted, 0.05 * drawn))
            m = min(self.sample_batch_size, max(need, 1))
            p, ev, ok = self._sample_block(m, static_conds, required_items, gen, rng)
            drawn += m
            accepted += int(ok.sum())
            if required_items:
                keep = np.flatnonzero(ok)[: n - got]
            else:
                keep = np.arange(min(len(p), n - got))
            if len(keep):
                kept_ids = set(p.index[keep].tolist())
                p = p.iloc[keep]
                ev = ev[ev["_row"].isin(kept_ids)]
                # number the patients in order
                new_id = {r: id_start + got + j + 1 for j, r in enumerate(p.index.tolist())}
                p = p.reset_index(drop=True)
                p.insert(0, "_id", [id_start + got + j + 1 for j in range(len(p))])
                ev = ev.assign(_id=ev["_row"].map(new_id))
                patients_parts.append(p)
                event_parts.append(ev)
                got += len(keep)
            if tries > 50 and got < n:
                raise ConditionError(
                    f"only {got} of {n} patients met the conditions {dict(conditions or {})} "
                    f"after {tries} batches; the model rarely generates such patients"
                )
        patients = pd.concat(patients_parts, ignore_index=True)
        events = pd.concat(event_parts, ignore_index=True)
        return self._assemble(patients, events)

    def _resolve(self, conditions: Mapping[str, Any] | None) -> tuple[dict[str, Any], list[int]]:
        codec = self.codec_
        conds = dict(conditions or {})
        has = conds.pop("has", None)
        required: list[int] = []
        if has is not None:
            wanted = list(has) if isinstance(has, (list, tuple, set)) else [has]
            for w in wanted:
                idx = _find_item(codec, str(w))
                if idx not in codec.flag_items:
                    raise ConditionError(
                        f"item '{w}' has no presence flag (only the {len(codec.flag_items)} most "
                        "frequent items have one); raise max_flags when fitting"
                    )
                required.append(idx)
                conds[flag_name(*codec.items[idx])] = 1
        for col in codec.flag_columns:  # flags nobody asked about say nothing
            conds.setdefault(col, UNSAID)
        key = self.template_["roles"]["key"]
        if key in conds:
            raise ConditionError(f"condition column '{key}' is the patient ID, which is generated")
        resolved = resolve_conditions(conds, codec.static_schema)
        return resolved, required

    def _sample_block(
        self,
        m: int,
        conds: dict[str, Any],
        required_items: list[int],
        gen: Any,
        rng: np.random.Generator,
    ) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
        from healthsynth.generators.tabular_lm._native import sample_tokens, slot_order
        from healthsynth.generators.timeline_lm._model import Constraints, sample_timelines

        codec = self.codec_
        sc = codec.static
        cond_cols = [i for i, c in enumerate(sc.columns) if c.name in conds]
        masks, fine_tables = sc.slot_masks(conds)
        static_local, _ = sample_tokens(
            self.model_,
            sc,
            m,
            order=slot_order(sc, cond_cols),
            masks=masks,
            fine_tables=fine_tables,
            generator=gen,
            temperature=float(self.temperature),
        )
        static_df = sc.decode(static_local, rng, conds)
        roles = self.template_["roles"]
        n_items = len(codec.items)
        end = np.full(m, np.inf)
        if roles.get("end"):
            end = pd.to_numeric(static_df[roles["end"]], errors="coerce").to_numpy(float)
            end = np.where(np.isfinite(end), end, np.inf)
        # an item whose presence flag is "no" is never emitted (in training such a patient never
        # has it); the items a cohort condition asks for must occur before the timeline ends
        required = np.zeros((m, n_items), bool)
        forbidden = np.zeros((m, n_items), bool)
        for i, col in zip(codec.flag_items, codec.flag_columns, strict=True):
            flag = pd.to_numeric(static_df[col], errors="coerce").to_numpy(float)
            forbidden[:, i] = flag == 0
        required[:, required_items] = True
        sex = np.full(m, -1)
        if roles.get("sex"):
            first = static_df[roles["sex"]].astype(str).str.strip().str.lower().str[:1]
            sex = np.where(first == "f", 0, np.where(first == "m", 1, -1))
        age = np.full(m, np.nan)
        if roles.get("age"):
            age = pd.to_numeric(static_df[roles["age"]], errors="coerce").to_numpy(float)
        tokens, states, days, met = sample_timelines(
            self.model_,
            self._sampler(),
            static_local=static_local,
            constraints=Constraints(
                end=end, required=required, forbidden=forbidden, sex=sex, age=age
            ),
            generator=gen,
            rng=rng,
            temperature=float(self.temperature),
        )
        ok = np.ones(m, bool)
        if required_items:
            ok = np.array(
                [all((codec.item0 + i) in set(t.tolist()) for i in required_items) for t in tokens]
            )
        events = self._decode_events(tokens, states, days, rng)
        patients = static_df.drop(columns=codec.flag_columns)
        return patients, events, ok

    def _sampler(self) -> Any:
        if getattr(self, "sampler_", None) is None:
            from healthsynth.generators.timeline_lm._model import _Sampler

            codec = self.codec_
            sexes: list[tuple[bool, bool]] = []
            ages: list[tuple[float, float]] = []
            ranges: list[tuple[float | None, float | None]] = []
            for table, item in codec.items:
                entry = self.code_map_.get(table, item) if self.code_map_ is not None else None
                if entry is None:
                    sexes.append((True, True))
                    ages.append((0.0, math.inf))
                    ranges.append((None, None))
                else:
                    s = entry.sexes()
                    sexes.append(("female" in s, "male" in s))
                    ages.append(entry.ages())
                    ranges.append((entry.low, entry.high))
            self.sampler_ = _Sampler(codec, item_sexes=sexes, item_ages=ages, value_ranges=ranges)
        return self.sampler_

    def _decode_events(
        self,
        tokens: list[np.ndarray],
        states: list[np.ndarray],
        days: list[np.ndarray],
        rng: np.random.Generator,
    ) -> pd.DataFrame:
        codec = self.codec_
        lengths = np.array([len(t) for t in tokens])
        row = np.repeat(np.arange(len(tokens)), lengths)
        tok = np.concatenate(tokens) if len(tokens) else np.zeros(0, np.int64)
        st = np.concatenate(states) if len(states) else np.zeros(0, np.int64)
        n_items = len(codec.items)
        at_item = np.flatnonzero(
            (st == codec.S_ITEM) & (tok >= codec.item0) & (tok < codec.item0 + n_items)
        )
        item = tok[at_item] - codec.item0
        value = np.full(len(at_item), np.nan)
        for i, num in enumerate(codec.values):
            if num is None:
                continue
            sel = np.flatnonzero(item == i)
            if not len(sel):
                continue
            pos = at_item[sel]
            t0 = tok[pos + 1] - codec.val_c[i]
            t1 = tok[pos + 2] - codec.val_f[i] if num.two else None
            entry = None
            if self.code_map_ is not None:
                entry = self.code_map_.get(*codec.items[i])
            low = entry.low if entry is not None else None
            high = entry.high if entry is not None else None
            value[sel] = num.decode(t0, t1, rng, low, high)
        day_all = np.full(len(tok), np.nan)
        if len(days):
            # days are recorded per item-state position, in order
            day_all[np.flatnonzero(st == codec.S_ITEM)] = np.concatenate(days)
        day = day_all[at_item]
        tables = np.array([t for t, _ in codec.items], dtype=object)
        names = np.array([i for _, i in codec.items], dtype=object)
        return pd.DataFrame(
            {
                "_row": row[at_item],
                "_day": day,
                "table": tables[item] if len(item) else np.array([], dtype=object),
                "item": names[item] if len(item) else np.array([], dtype=object),
                "value": value,
            }
        )

    def _assemble(self, patients: pd.DataFrame, events: pd.DataFrame) -> Dataset:
        tpl = self.template_
        roles = tpl["roles"]
        key, time_col = roles["key"], roles["time"]
        tables = {name: _empty_frame(spec) for name, spec in tpl["tables"].items()}
        like = tables[roles["patients"]]
        p = patients.rename(columns={"_id": key})
        p = p[[c for c in like.columns]]
        p[key] = _ids_like(p[key].to_numpy(), like[key].dtype)
        days = events["_day"].to_numpy(float)
        if roles.get("time_integer"):
            days = np.round(days)
        ev = pd.DataFrame(
            {
                key: _ids_like(events["_id"].to_numpy(), like[key].dtype),
                time_col: days,
                "table": events["table"].to_numpy(),
                "item": events["item"].to_numpy(),
                "value": events["value"].to_numpy(float),
            }
        )
        ds = Dataset(
            tables=tables,
            key=key,
            time=time_col,
            patients=roles["patients"],
            layouts={n: EventTable.from_dict(d) for n, d in roles["layouts"].items()},
            schemas={},
            end=roles.get("end"),
            death=roles.get("death"),
            sex=roles.get("sex"),
            age=roles.get("age"),
            death_value=roles.get("death_value", 1),
        )
        out = ds.with_events(p, ev)
        return out

    # -- files ----------------------------------------------------------------------------
    def sample_to_folder(
        self,
        n: int,
        folder: str | Path,
        *,
        fmt: str = "csv",
        conditions: Mapping[str, Any] | None = None,
        seed: int | None = None,
        block_size: int = 5_000,
    ) -> Path:
        """Sample ``n`` patients into ``folder`` as CSV, Parquet, OMOP, MEDS or FHIR.

        CSV and Parquet are written block by block (memory stays bounded); the standard
        formats are written from the whole sample. The folder appears only when complete.
        """
        from healthsynth.data import export_dataset_as

        self._check_fitted()
        formats = ("csv", "parquet", "omop", "meds", "fhir")
        if fmt not in formats:
            raise ParameterError(f"format '{fmt}' is not one of {', '.join(formats)}")
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0:
            raise ParameterError(f"n must be a positive whole number of patients; got {n!r}")
        seeds = np.random.default_rng(self.seed if seed is None else seed).integers(
            0, 2**31 - 1, size=int(n) // block_size + 1
        )
        tables = list(self.template_["tables"])
        with data_atomic_folder(
            folder,
            action="write the synthetic patients",
            kind="timelines sample",
            # an earlier sample (a run record, or only this model's tables) may be replaced
            is_ours=lambda p: (
                (p / "run.json").exists()
                or {c.name for c in p.iterdir()}
                <= {f"{t}.{e}" for t in tables for e in ("csv", "parquet")}
            ),
        ) as tmp:
            if fmt in ("csv", "parquet"):
                done = 0
                for i, block_seed in enumerate(seeds):
                    m = min(block_size, n - done)
                    if m <= 0:
                        break
                    ds = self.sample(m, conditions=conditions, seed=int(block_seed), id_start=done)
                    for name, df in ds.tables.items():
                        path = tmp / f"{name}.{fmt}"
                        if fmt == "csv":
                            df.to_csv(path, mode="a" if i else "w", header=(i == 0), index=False)
                        else:
                            df.to_parquet(tmp / f"{name}.part{i:05d}.parquet", index=False)
                    done += m
                if fmt == "parquet":
                    _merge_parquet_parts(tmp)
            else:
                ds = self.sample(n, conditions=conditions, seed=int(seeds[0]))
                export_dataset_as(
                    ds,
                    tmp / "export",
                    fmt=fmt,  # type: ignore[arg-type]
                    code_map=self.code_map_,
                )
                for child in (tmp / "export").iterdir():
                    child.rename(tmp / child.name)
                (tmp / "export").rmdir()
        return Path(folder)

    def save(self, path: str | Path) -> Path:
        """Write the model folder: weights as safetensors, everything else as JSON."""
        import json

        self._check_fitted()
        path = Path(path)
        with atomic_folder(path) as tmp:
            self.model_.save_pretrained(tmp / "model", safe_serialization=True)
            params = self._json_params()
            write_common(
                tmp,
                name=self.name,
                format_version=_FORMAT_VERSION,
                params=params,
                schema=self.codec_.static_schema,
                training=jsonable(self.training_record_),
                extra={"codec": self.codec_.to_dict(), "template": self.template_},
            )
            if self.code_map_ is not None:
                (tmp / "code_map.json").write_text(
                    json.dumps(self.code_map_.to_dict(), indent=1), encoding="utf-8"
                )
        return path

    @classmethod
    def load(cls, path: str | Path, *, trust_pickle: bool = False) -> TimelineLM:
        """Load a model folder written by :meth:`save` (nothing is unpickled).

        ``trust_pickle`` is unused: this folder holds no pickle. Table names must be plain
        names and a ``config.json`` with an ``auto_map`` (code to import) is refused.
        """
        folder, meta, _schema, params = open_folder(
            path,
            name=cls.name,
            format_version=_FORMAT_VERSION,
            param_names=[p for p in cls().get_params()],
        )
        params.pop("code_map", None)
        self = cls(**params)
        try:
            self.codec_ = TimelineCodec(meta["codec"])
            self.template_ = meta["template"]
            names = [*self.template_["tables"], self.template_["roles"]["patients"]]
        except (KeyError, TypeError, ValueError, AssertionError) as e:
            raise ModelFolderError(
                f"model folder {folder} is corrupted: generator.json's codec is unreadable ({e})"
            ) from None
        # the template's table names become file names when sampling to a folder
        check_folder_names(folder, names)
        check_folder_names(folder, sorted({t for t, _ in self.codec_.items}))
        model_dir = folder / "model"
        if not (model_dir / "model.safetensors").exists():
            raise ModelFolderError(
                f"model folder {folder} is incomplete: model/model.safetensors is missing"
            )
        check_no_remote_code(model_dir, folder)
        try:
            from transformers import AutoModelForCausalLM

            self.model_ = AutoModelForCausalLM.from_pretrained(
                model_dir, use_safetensors=True, local_files_only=True, trust_remote_code=False
            )
        except Exception as e:  # transformers and safetensors raise many types
            raise ModelFolderError(
                f"model folder {folder} is corrupted: the weights could not be loaded ({e})"
            ) from None
        self.model_.eval()
        if self.model_.config.vocab_size != self.codec_.vocab_size:
            raise ModelFolderError(
                f"model folder {folder} is corrupted: the weights do not match generator.json"
            )
        self.code_map_ = None
        if (folder / "code_map.json").exists():
            from healthsynth.knowledge import CodeMap

            self.code_map_ = CodeMap.from_dict(read_json(folder / "code_map.json", folder))
            self.code_map = self.code_map_.name
        self.schema_ = self.codec_.static_schema
        self.training_record_ = read_json(folder / "training.json", folder)
        return self


def _find_item(codec: TimelineCodec, name: str) -> int:
    for i, (table, item) in enumerate(codec.items):
        if name in (item, f"{table}/{item}"):
            return i
    known = ", ".join(i for _, i in codec.items[:30])
    raise ConditionError(f"'has' names the item '{name}', which never occurs; items: {known}")


def _as_code_map(code_map: Any) -> Any:
    if code_map is None:
        return None
    from healthsynth.knowledge import CodeMap, load_code_map

    if isinstance(code_map, CodeMap):
        return code_map
    if isinstance(code_map, (str, Path)):
        return load_code_map(code_map)
    raise ParameterError(
        f"parameter 'code_map' must be a CodeMap, a packaged mapping name or a CSV path; got "
        f"{type(code_map).__name__}"
    )


def _template(data: Dataset) -> dict[str, Any]:
    """What sampling needs to rebuild tables shaped like the training ones (no data)."""
    roles = data.roles()
    t = data.events()[data.time]
    roles["time_integer"] = bool(
        len(t) == 0 or np.all(np.abs(t.to_numpy(float) - np.round(t.to_numpy(float))) < 1e-9)
    )
    return {
        "roles": jsonable(roles),
        "tables": {
            n: {"columns": [str(c) for c in df.columns], "dtypes": [str(d) for d in df.dtypes]}
            for n, df in data.tables.items()
        },
    }


def _empty_frame(spec: Mapping[str, Any]) -> pd.DataFrame:
    cols = {}
    for c, d in zip(spec["columns"], spec["dtypes"], strict=True):
        try:
            cols[c] = pd.Series(dtype=d)
        except TypeError:
            cols[c] = pd.Series(dtype=object)
    return pd.DataFrame(cols)


def _ids_like(ids: np.ndarray, dtype: Any) -> np.ndarray:
    if pd.api.types.is_numeric_dtype(dtype):
        return ids.astype(np.int64)
    return np.array([f"syn-{int(i):08d}" for i in ids], dtype=object)


def _merge_parquet_parts(folder: Path) -> None:
    import pyarrow.parquet as pq

    names = sorted({p.name.split(".part")[0] for p in folder.glob("*.part*.parquet")})
    for name in names:
        parts = sorted(folder.glob(f"{name}.part*.parquet"))
        writer = None
        for part in parts:
            table = pq.read_table(part)
            if writer is None:
                writer = pq.ParquetWriter(folder / f"{name}.parquet", table.schema)
            writer.write_table(table.cast(writer.schema))
            part.unlink()
        if writer is not None:
            writer.close()
