"""The ``tabular-lm`` generator."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from healthsynth.data import Schema, infer_schema
from healthsynth.data._distance import RowEncoder, nearest_distances
from healthsynth.errors import ConditionError, DataError, ModelFolderError, ParameterError
from healthsynth.generators._base import (
    Generator,
    as_rules,
    progress_bar,
    surrogate_ids,
    warn,
)
from healthsynth.generators._conditions import Condition, resolve_conditions
from healthsynth.generators._folder import (
    atomic_folder,
    check_no_remote_code,
    jsonable,
    open_folder,
    peak_rss_mb,
    read_json,
    runtime_info,
    write_common,
)
from healthsynth.generators.tabular_lm._codec import TableCodec

__all__ = ["MIN_ROWS", "TabularLM"]

#: Fewer rows than this cannot be split into training and validation parts.
MIN_ROWS = 10
#: Rounds of redrawing rows that break a rule before giving up.
_MAX_REDRAWS = 20
_FORMAT_VERSION = 1

_PARAMS: dict[str, tuple[type | tuple[type, ...], Any]] = {
    # name: (accepted types, check) — one table, so every message has the same shape
    "epochs": ((int, type(None)), lambda v: v is None or v >= 1),
    "batch_size": ((int, type(None)), lambda v: v is None or v >= 1),
    "learning_rate": ((float, int, type(None)), lambda v: v is None or v > 0),
    "n_embd": ((int,), lambda v: v >= 8),
    "n_layer": ((int,), lambda v: v >= 1),
    "n_head": ((int,), lambda v: v >= 1),
    "dropout": ((float, int, type(None)), lambda v: v is None or 0 <= v < 1),
    "n_bins": ((int,), lambda v: v >= 2),
    "n_sub_bins": ((int,), lambda v: v >= 1),
    "max_discrete": ((int,), lambda v: v >= 1),
    "validation_fraction": ((float,), lambda v: 0 < v < 0.5),
    "patience": ((int,), lambda v: v >= 1),
    "perm_prob": ((float, int), lambda v: 0 <= v <= 1),
    "max_time": ((float, int, type(None)), lambda v: v is None or v > 0),
    "privacy_stop": ((bool,), lambda v: True),
    "privacy_every": ((int,), lambda v: v >= 1),
    "base_model": ((str, Path, type(None)), lambda v: True),
    "sample_batch_size": ((int,), lambda v: v >= 1),
    "temperature": ((float, int), lambda v: v > 0),
    "seed": ((int,), lambda v: True),
    "verbose": ((bool,), lambda v: True),
}


class TabularLM(Generator):
    """A causal transformer that learns rows of a table as token sequences.

    By default a small GPT-2 is trained from scratch on per-column vocabularies (see
    :mod:`._codec`); with ``base_model`` a local pretrained causal LM is fine-tuned on rows written
    as text ("age is 63, sex is female, ...").

    Parameters
    ----------
    epochs
        Training epochs; ``None`` picks a number from the table size (about 3,000 optimizer
        steps, 8–300 epochs), with early stopping on validation loss either way.
    batch_size, learning_rate
        ``None`` picks them from the table size.
    n_embd, n_layer, n_head, dropout
        Transformer size (from-scratch model only); ``dropout=None`` uses 0.2 below 1,000
        training rows and 0.1 above (measured on survival/pbc and survival/colon).
    n_bins, n_sub_bins, max_discrete
        Numeric encoding: at most ``n_bins`` quantile bins × ``n_sub_bins`` sub-intervals; a
        column with at most ``max_discrete`` distinct values gets one token per value.
    validation_fraction
        Share of rows held out for early stopping and the privacy-aware stop.
    patience
        Epochs without validation improvement before stopping.
    perm_prob
        Share of training rows whose columns are reordered (a random subset first), which is
        what lets sampling condition on any columns.
    max_time
        Wall-clock limit for training, in seconds.
    privacy_stop
        Every ``privacy_every`` epochs, sample as many rows as the validation part and stop when
        significantly more than half of them are closer to training rows than to validation
        rows (the model starts to copy); the last weights that passed are kept.
    base_model
        Path of a local pretrained causal LM folder (GPT-2 or Llama class) to fine-tune.
    sample_batch_size
        Rows decoded at once.
    temperature
        Sampling temperature (1.0 samples the learned distribution).
    seed
        Seed for the split, initialization, training order and dropout.
    verbose
        Show progress bars.
    """

    name = "tabular-lm"

    def __init__(
        self,
        *,
        epochs: int | None = None,
        batch_size: int | None = None,
        learning_rate: float | None = None,
        n_embd: int = 96,
        n_layer: int = 3,
        n_head: int = 4,
        dropout: float | None = None,
        n_bins: int = 32,
        n_sub_bins: int = 16,
        max_discrete: int = 100,
        validation_fraction: float = 0.1,
        patience: int = 12,
        perm_prob: float = 0.5,
        max_time: float | None = None,
        privacy_stop: bool = True,
        privacy_every: int = 5,
        base_model: str | Path | None = None,
        sample_batch_size: int = 1024,
        temperature: float = 1.0,
        seed: int = 0,
        verbose: bool = False,
    ) -> None:
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.n_embd = n_embd
        self.n_layer = n_layer
        self.n_head = n_head
        self.dropout = dropout
        self.n_bins = n_bins
        self.n_sub_bins = n_sub_bins
        self.max_discrete = max_discrete
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.perm_prob = perm_prob
        self.max_time = max_time
        self.privacy_stop = privacy_stop
        self.privacy_every = privacy_every
        self.base_model = base_model
        self.sample_batch_size = sample_batch_size
        self.temperature = temperature
        self.seed = seed
        self.verbose = verbose

    # -- validation ---------------------------------------------------------------------------
    def _validate_params(self) -> None:
        for name, (types, ok) in _PARAMS.items():
            v = getattr(self, name)
            if isinstance(v, bool) and bool not in (
                types if isinstance(types, tuple) else (types,)
            ):
                raise ParameterError(f"parameter '{name}' must be a number; got {v!r}")
            if not isinstance(v, types) or not ok(v):
                raise ParameterError(f"parameter '{name}' has an invalid value {v!r}")
        if self.base_model is None and self.n_embd % self.n_head:
            raise ParameterError(
                f"parameter 'n_embd' ({self.n_embd}) must be a multiple of 'n_head' ({self.n_head})"
            )

    # -- fit ----------------------------------------------------------------------------------
    def fit(
        self, data: pd.DataFrame, *, schema: Schema | None = None, rules: Any = None
    ) -> TabularLM:
        """Learn the table ``data``; infer the schema unless one is given.

        ``rules`` (a :class:`healthsynth.knowledge.RuleSet`, or a path to a rules YAML file)
        are enforced on every sampled row: decoding never produces a row that breaks them.
        """
        import torch

        self._validate_params()
        started = time.perf_counter()
        cpu0 = time.process_time()
        if not isinstance(data, pd.DataFrame):
            raise DataError(f"data must be a pandas DataFrame; got {type(data).__name__}")
        if schema is None:
            schema = infer_schema(data)
        else:
            schema.validate(data)
        if len(data) < MIN_ROWS:
            raise DataError(
                f"the data has {len(data)} row{'s' if len(data) != 1 else ''}; tabular-lm needs "
                f"at least {MIN_ROWS} to learn from"
            )
        for c in schema.columns:
            if c.kind == "text":
                warn(
                    f"column '{c.name}' holds free text, which tabular-lm does not generate yet; "
                    "it is left out of the synthetic data"
                )
            elif c.is_modelled and data[c.name].isna().all():
                warn(f"column '{c.name}' is entirely missing; it is generated as missing")
        if not schema.modelled:
            raise DataError(
                "the data has no column to learn: every column is an identifier or free text"
            )
        rng = np.random.default_rng(self.seed)
        order = rng.permutation(len(data))
        # at least 40 validation rows (at most a quarter of the data): early stopping on fewer
        # rows follows noise
        n_val = int(min(max(self.validation_fraction * len(data), 40), len(data) // 4))
        n_val = max(n_val, 2)
        val_df = data.iloc[order[:n_val]].reset_index(drop=True)
        train_df = data.iloc[order[n_val:]].reset_index(drop=True)
        codec = TableCodec.fit(
            schema,
            train_df,
            n_bins=self.n_bins,
            n_sub_bins=self.n_sub_bins,
            max_discrete=self.max_discrete,
        )
        self.schema_ = schema
        self.codec_ = codec
        self.text_: Any = None
        self.rules_ = as_rules(rules, schema)
        if self.rules_ is not None and self.base_model is None:
            from healthsynth.generators.tabular_lm._rules import RuleDecoder

            RuleDecoder(self.rules_, codec)  # refuses rules it cannot enforce, before training

        n_train = len(train_df)
        batch_size = self.batch_size or int(np.clip(n_train // 16, 16, 256))
        steps_per_epoch = math.ceil(n_train / batch_size)
        epochs = self.epochs or int(np.clip(math.ceil(3000 / steps_per_epoch), 8, 300))
        lr = self.learning_rate or (2e-3 if self.base_model is None else 1e-4)
        dropout = self.dropout if self.dropout is not None else (0.2 if n_train < 1000 else 0.1)
        check = self._privacy_check(train_df, val_df) if self.privacy_stop else None
        progress = progress_bar(self.verbose)
        with progress:
            if self.base_model is None:
                from healthsynth.generators.tabular_lm._native import build_model, train_model

                train_tokens = codec.encode(train_df, rng)
                val_tokens = codec.encode(val_df, rng)
                self.model_ = build_model(
                    codec,
                    n_embd=self.n_embd,
                    n_layer=self.n_layer,
                    n_head=self.n_head,
                    dropout=dropout,
                    seed=self.seed,
                )
                record = train_model(
                    self.model_,
                    codec,
                    train_tokens,
                    val_tokens,
                    epochs=epochs,
                    batch_size=batch_size,
                    learning_rate=lr,
                    weight_decay=0.01,
                    patience=self.patience,
                    perm_prob=self.perm_prob,
                    max_time=self.max_time,
                    seed=self.seed,
                    privacy_check=check,
                    privacy_every=self.privacy_every,
                    progress=progress if self.verbose else None,
                )
            else:
                from healthsynth.generators.tabular_lm._text import TextLM

                self.text_ = TextLM.from_base(Path(self.base_model), codec, schema)
                record = self.text_.train(
                    train_df,
                    val_df,
                    epochs=self.epochs or 3,
                    batch_size=self.batch_size or 8,
                    learning_rate=lr,
                    patience=self.patience,
                    perm_prob=self.perm_prob,
                    max_time=self.max_time,
                    seed=self.seed,
                    privacy_check=check,
                    privacy_every=self.privacy_every,
                    progress=progress if self.verbose else None,
                )
                self.model_ = self.text_.model
        n_params = int(sum(p.numel() for p in self.model_.parameters()))
        self.training_record_ = {
            **record,
            "generator": self.name,
            "params": jsonable(self.get_params()),
            "batch_size": batch_size,
            "learning_rate": lr,
            "dropout": dropout,
            "n_parameters": n_params,
            "n_rows": int(len(data)),
            "n_train_rows": int(n_train),
            "n_validation_rows": int(n_val),
            "n_columns_modelled": len(schema.modelled),
            "n_tokens_per_row": codec.n_slots,
            "vocab_size": codec.vocab_size,
            "fit_seconds": round(time.perf_counter() - started, 3),
            "fit_cpu_seconds": round(time.process_time() - cpu0, 3),
            "peak_rss_mb": peak_rss_mb(),
            "torch_threads": torch.get_num_threads(),
            "runtime": runtime_info(),
        }
        return self

    def _privacy_check(self, train_df: pd.DataFrame, val_df: pd.DataFrame) -> Any:
        """A closure that scores how much closer the model's rows sit to training rows."""
        m = len(val_df)
        enc = RowEncoder(self.schema_).fit(train_df)
        sub = np.random.default_rng(self.seed + 1).choice(
            len(train_df), size=min(m, len(train_df)), replace=False
        )
        train_x = enc.transform(train_df.iloc[sub])
        val_x = enc.transform(val_df)
        # the fixed validation rows dominate the noise of the share: size the margin by them
        margin = max(0.03, 2.0 * math.sqrt(0.25 / max(m, 1)))
        n_synth = int(min(2000, max(5 * m, 200)))

        def check(model: Any) -> dict[str, Any]:
            self.model_ = model
            synth = self._sample_rows(n_synth, {}, seed=self.seed + 7)
            sx = enc.transform(synth)
            d_train = nearest_distances(sx, train_x)[:, 0]
            d_val = nearest_distances(sx, val_x)[:, 0]
            share = float(np.mean(d_train < d_val) + 0.5 * np.mean(d_train == d_val))
            return {
                "closer_to_train_share": round(share, 4),
                "threshold": round(0.5 + margin, 4),
                "passed": share <= 0.5 + margin,
            }

        return check

    # -- sample -------------------------------------------------------------------------------
    def sample(
        self,
        n: int,
        *,
        conditions: Mapping[str, Any] | None = None,
        seed: int | None = None,
    ) -> pd.DataFrame:
        """Return ``n`` rows that match the schema, optionally conditioned.

        Parameters
        ----------
        n
            Number of rows.
        conditions
            Values or ranges for any columns, e.g. ``{"sex": "female", "age": ">=60"}``;
            the other columns follow the model's conditional distribution.
        seed
            Same seed, same rows; ``None`` draws fresh randomness.
        """
        self._check_fitted()
        n = self._check_n(n)
        conds = resolve_conditions(conditions, self.schema_)
        df = self._sample_rows(n, conds, seed=seed)
        return self._finish(df, start=0)

    def _sample_rows(
        self, n: int, conds: dict[str, Condition], *, seed: int | None
    ) -> pd.DataFrame:
        import torch

        rng = np.random.default_rng(seed)
        gen = torch.Generator().manual_seed(int(rng.integers(0, 2**62)))
        codec = self.codec_
        if self.text_ is not None:

            def draw_text(m: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
                block = self.text_.sample(
                    m,
                    conds,
                    rng=rng,
                    generator=gen,
                    temperature=self.temperature,
                    batch_size=min(self.sample_batch_size, 256),
                )
                return block, np.zeros(m), np.zeros(m, bool)

            return self._valid_rows(draw_text, n, conds)[0]
        from healthsynth.generators.tabular_lm._native import sample_tokens, slot_order

        names = [c.name for c in codec.columns]
        first = [names.index(c) for c in conds]
        order = slot_order(codec, first)
        masks, tables = codec.slot_masks(conds)
        constrained = {s for c in first for s in codec.column_slots[c]}
        decoder = None
        if self.rules_ is not None:
            from healthsynth.generators.tabular_lm._rules import RuleDecoder

            decoder = RuleDecoder(self.rules_, codec)

        def draw(m: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
            state = decoder.start(m, order) if decoder is not None else None
            toks, logp = sample_tokens(
                self.model_,
                codec,
                m,
                order=order,
                masks=masks,
                fine_tables=tables,
                generator=gen,
                temperature=self.temperature,
                constrained_slots=constrained,
                rules=decoder,
                rule_state=state,
            )
            bounds = state.bounds() if state is not None else None
            block = codec.decode(toks, rng, conds, bounds)
            bad = state.infeasible.numpy() if state is not None else np.zeros(m, bool)
            return block, logp, bad

        blocks, logps = [], []
        for start in range(0, n, self.sample_batch_size):
            m = min(self.sample_batch_size, n - start)
            block, logp = self._valid_rows(draw, m, conds)
            blocks.append(block)
            logps.append(logp)
        df = pd.concat(blocks, ignore_index=True)
        if conds:
            p = float(np.exp(np.concatenate(logps)).mean())
            df.attrs["condition_probability"] = p
            if p < 1e-3:
                warn(
                    f"the conditions ({'; '.join(c.describe() for c in conds.values())}) have "
                    f"probability {p:.1e} under the model: they (almost) never occur together "
                    "in the training data, so these rows are extrapolations"
                )
        return df

    def _valid_rows(
        self, draw: Any, m: int, conds: dict[str, Condition]
    ) -> tuple[pd.DataFrame, np.ndarray]:
        """Draw ``m`` rows, drawing again the rows that break a rule.

        Rule masks make such rows impossible on the native path unless the rules contradict
        each other or the conditions; the text path relies on redrawing alone.
        """
        block, logp, bad = draw(m)
        if self.rules_ is None:
            return block, logp
        block = block.reset_index(drop=True)
        for _ in range(_MAX_REDRAWS):
            bad = bad | self.rules_.violations(block).to_numpy().any(axis=1)
            if not bad.any():
                return block, logp
            idx = np.flatnonzero(bad)
            again, again_logp, again_bad = draw(len(idx))
            block.iloc[idx] = again.to_numpy()
            logp[idx] = again_logp
            bad = np.zeros(m, bool)
            bad[idx] = again_bad
        broken = self.rules_.violations(block).any(axis=0)
        names = ", ".join(str(r) for r in broken[broken].index) or "rule masks left no value"
        extra = (
            f" together with the conditions ({'; '.join(c.describe() for c in conds.values())})"
            if conds
            else ""
        )
        raise ConditionError(
            f"no valid row could be drawn for {int(bad.sum())} of {m} rows: the rules ({names})"
            f"{extra} cannot all hold; check the rules file"
        )

    def _finish(self, df: pd.DataFrame, *, start: int) -> pd.DataFrame:
        """Add surrogate identifiers and put columns in schema order."""
        out: dict[str, Any] = {}
        for c in self.schema_.columns:
            if c.kind == "text":
                continue
            if c.kind == "identifier":
                out[c.name] = surrogate_ids(c.dtype, start, len(df))
            else:
                out[c.name] = df[c.name].to_numpy() if c.name in df else None
        result = pd.DataFrame(out)
        for c in self.schema_.modelled:
            result[c.name] = df[c.name].reset_index(drop=True)
        result.attrs.update(df.attrs)
        return result

    # -- persistence ----------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the model folder (see :mod:`healthsynth.generators._folder`)."""
        self._check_fitted()
        path = Path(path)
        with atomic_folder(path) as tmp:
            if self.text_ is not None:
                self.text_.save(tmp / "model")
            else:
                self.model_.save_pretrained(tmp / "model", safe_serialization=True)
            write_common(
                tmp,
                name=self.name,
                format_version=_FORMAT_VERSION,
                params=jsonable(self.get_params()),
                schema=self.schema_,
                training=jsonable(self.training_record_),
                extra={
                    "encoding": "text" if self.text_ is not None else "slots",
                    "codec": self.codec_.to_dict(),
                },
            )
            if self.rules_ is not None:
                (tmp / "rules.json").write_text(
                    json.dumps(self.rules_.to_dict(), indent=1), encoding="utf-8"
                )
        return path

    @classmethod
    def load(cls, path: str | Path, *, trust_pickle: bool = False) -> TabularLM:
        """Load a model folder; weights come from safetensors only (nothing is unpickled).

        ``trust_pickle`` is unused: this folder holds no pickle. A ``config.json`` with an
        ``auto_map`` (code to import) is refused.
        """
        folder, meta, schema, params = open_folder(
            path, name=cls.name, format_version=_FORMAT_VERSION, param_names=cls._param_names()
        )
        self = cls(**params)
        try:
            codec = TableCodec(schema, meta["codec"])
        except (KeyError, TypeError, ValueError) as e:
            raise ModelFolderError(
                f"model folder {folder} is corrupted: generator.json's codec is unreadable ({e})"
            ) from None
        model_dir = folder / "model"
        if (
            not (model_dir / "config.json").exists()
            or not (model_dir / "model.safetensors").exists()
        ):
            raise ModelFolderError(
                f"model folder {folder} is incomplete: model/config.json or "
                "model/model.safetensors is missing; fit the model again"
            )
        check_no_remote_code(model_dir, folder)
        try:
            if meta.get("encoding") == "text":
                from healthsynth.generators.tabular_lm._text import TextLM

                self.text_ = TextLM.load(model_dir, codec, schema)
                self.model_ = self.text_.model
            else:
                from transformers import AutoModelForCausalLM

                self.model_ = AutoModelForCausalLM.from_pretrained(
                    model_dir, use_safetensors=True, local_files_only=True, trust_remote_code=False
                )
                self.model_.eval()
                self.text_ = None
        except ModelFolderError:
            raise
        except Exception as e:  # transformers and safetensors raise many types
            raise ModelFolderError(
                f"model folder {folder} is corrupted: the weights could not be loaded ({e})"
            ) from None
        if self.text_ is None and self.model_.config.vocab_size != codec.vocab_size:
            raise ModelFolderError(
                f"model folder {folder} is corrupted: the weights do not match generator.json"
            )
        self.schema_ = schema
        self.codec_ = codec
        self.training_record_ = read_json(folder / "training.json", folder)
        self.rules_ = None
        if (folder / "rules.json").exists():
            from healthsynth.knowledge import RuleSet

            try:
                self.rules_ = RuleSet.from_dict(read_json(folder / "rules.json", folder))
            except (DataError, ParameterError, KeyError, TypeError, ValueError) as e:
                raise ModelFolderError(
                    f"model folder {folder} is corrupted: rules.json is unreadable ({e})"
                ) from None
        return self
