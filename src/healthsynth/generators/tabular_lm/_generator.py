"""The ``tabular-lm`` generator."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from healthsynth.data import Schema
from healthsynth.errors import ModelFolderError
from healthsynth.generators._base import Generator, as_rules, surrogate_ids
from healthsynth.generators._conditions import resolve_conditions
from healthsynth.generators._folder import jsonable
from healthsynth.generators._lm._fit import fit_resources
from healthsynth.generators._lm._infer import n_parameters
from healthsynth.generators.tabular_lm._checks import MIN_ROWS, check_data, validate_params
from healthsynth.generators.tabular_lm._codec import TableCodec
from healthsynth.generators.tabular_lm._sampling import sample_rows

__all__ = ["MIN_ROWS", "TabularLM"]


class TabularLM(Generator):
    """A causal transformer that learns rows of a table as token sequences.

    By default a small GPT (the Hugging Face GPT-2 layout, see
    :mod:`healthsynth.generators._lm`) is trained from scratch on per-column vocabularies (see
    :mod:`._codec`); with ``base_model`` a local pretrained causal LM is fine-tuned on rows written
    as text ("age is 63, sex is female, ..."). Both train with the shared loop and sample with
    the shared constrained sampler.

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
    threads
        Torch threads for fitting and sampling; ``None`` chooses them for the model size and
        the machine's load (``HEALTHSYNTH_THREADS`` or ``OMP_NUM_THREADS`` decide when set),
        and a fit drops to one thread when another process takes its cores. The choice and why
        are in the training record.
    seed
        Seed for the split, initialization, training order and dropout (``sample`` takes its
        own seed).
    verbose
        Show progress bars.
    """

    name = "tabular-lm"
    format_version = 2

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
        threads: int | None = None,
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
        self.threads = threads
        self.seed = seed
        self.verbose = verbose

    # -- validation ---------------------------------------------------------------------------
    # -- fit ----------------------------------------------------------------------------------
    def fit(
        self, data: pd.DataFrame, *, schema: Schema | None = None, rules: Any = None
    ) -> TabularLM:
        """Learn the table ``data``; infer the schema unless one is given.

        ``rules`` (a :class:`healthsynth.knowledge.RuleSet`, or a path to a rules YAML file)
        are enforced on every sampled row: decoding never produces a row that breaks them.
        """
        validate_params(self)
        started = time.perf_counter()
        cpu0 = time.process_time()
        schema = check_data(data, schema)
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
        if self.base_model is None:
            record = self._fit_slots(train_df, val_df, rng, epochs, batch_size, lr, dropout)
        else:
            record = self._fit_text(train_df, val_df, batch_size, lr)
        self.training_record_ = {
            **record,
            "generator": self.name,
            "params": jsonable(self.get_params()),
            "batch_size": batch_size,
            "learning_rate": lr,
            "dropout": dropout,
            "n_parameters": n_parameters(self.model_),
            "n_rows": int(len(data)),
            "n_train_rows": int(n_train),
            "n_validation_rows": int(n_val),
            "n_columns_modelled": len(schema.modelled),
            "n_tokens_per_row": codec.n_slots,
            "vocab_size": codec.vocab_size,
            **fit_resources(started, cpu0),
        }
        return self

    def _settings(self, epochs: int, lr: float, *, weight_decay: float, label: str) -> Any:
        from healthsynth.generators._lm._train import TrainSettings

        return TrainSettings(
            epochs=epochs,
            learning_rate=lr,
            weight_decay=weight_decay,
            patience=self.patience,
            max_time=self.max_time,
            seed=self.seed,
            label=label,
        )

    def _checks(self, train_df: pd.DataFrame, val_df: pd.DataFrame) -> list[Any]:
        """The privacy-aware stop, when asked for."""
        if not self.privacy_stop:
            return []
        from healthsynth.generators._lm._train import PeriodicCheck
        from healthsynth.generators.tabular_lm._privacy import privacy_check

        def sample(model: Any, n: int, seed: int) -> pd.DataFrame:
            return sample_rows(self, n, {}, seed=seed)  # model is self.model_, being trained

        check = privacy_check(sample, self.schema_, train_df, val_df, seed=self.seed)
        return [PeriodicCheck("privacy", self.privacy_every, check)]

    def _fit_slots(
        self,
        train_df: pd.DataFrame,
        val_df: pd.DataFrame,
        rng: np.random.Generator,
        epochs: int,
        batch_size: int,
        lr: float,
        dropout: float,
    ) -> dict[str, Any]:
        """Train the from-scratch GPT on slot tokens."""
        from healthsynth.generators._lm._fit import fit_model
        from healthsynth.generators._lm._threads import choose_threads
        from healthsynth.generators.tabular_lm._slot_model import TableObjective, build_model

        codec = self.codec_
        objective = TableObjective(
            codec,
            codec.encode(train_df, rng),
            codec.encode(val_df, rng),
            batch_size=batch_size,
            perm_prob=self.perm_prob,
        )
        self.model_: Any = build_model(
            codec,
            n_embd=self.n_embd,
            n_layer=self.n_layer,
            n_head=self.n_head,
            dropout=dropout,
            seed=self.seed,
        )
        work = self.model_.n_parameters() * batch_size * codec.n_slots
        return fit_model(
            self.model_,
            objective,
            self._settings(epochs, lr, weight_decay=0.01, label="training"),
            threads=choose_threads(requested=self.threads, work=work),
            verbose=self.verbose,
            checks=self._checks(train_df, val_df),
        )

    def _fit_text(
        self, train_df: pd.DataFrame, val_df: pd.DataFrame, batch_size: int, lr: float
    ) -> dict[str, Any]:
        """Fine-tune the pretrained ``base_model`` on rows written as text."""
        from healthsynth.generators._lm._fit import fit_model
        from healthsynth.generators._lm._threads import choose_threads
        from healthsynth.generators.tabular_lm._text import TextLM, TextObjective

        self.text_ = TextLM.from_base(Path(str(self.base_model)), self.codec_, self.schema_)
        self.model_ = self.text_.model
        batch = self.batch_size or 8
        objective = TextObjective(
            self.text_, train_df, val_df, batch_size=batch, perm_prob=self.perm_prob
        )
        n_params = sum(p.numel() for p in self.model_.parameters())
        record = fit_model(
            self.model_,
            objective,
            self._settings(self.epochs or 3, lr, weight_decay=0.0, label="fine-tuning"),
            threads=choose_threads(requested=self.threads, work=n_params * batch * 32),
            verbose=self.verbose,
            checks=self._checks(train_df, val_df),
        )
        return {**record, "encoding": "text"}

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
        from healthsynth.generators._lm._threads import choose_threads, compute_threads

        self._check_fitted()
        n = self._check_n(n)
        conds = resolve_conditions(conditions, self.schema_)
        work = n_parameters(self.model_) * min(n, self.sample_batch_size)
        threads = choose_threads(requested=self.threads, work=work).n
        if self.text_ is not None:  # torch runs the pretrained model
            with compute_threads(threads):
                df = sample_rows(self, n, conds, seed=seed)
        else:  # blocks of rows in parallel, each on one BLAS thread
            with compute_threads(1):
                df = sample_rows(self, n, conds, seed=seed, workers=threads)
        return self._finish(df, start=0)

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
    def _save_state(self, folder: Path) -> dict[str, Any]:
        """The weights (a Hugging Face folder), and the codec for generator.json."""
        if self.text_ is not None:
            self.text_.save(folder)
        else:
            from healthsynth.generators._lm._io import save_model

            save_model(self.model_, folder)
        return {
            "encoding": "text" if self.text_ is not None else "slots",
            "codec": self.codec_.to_dict(),
        }

    def _load_state(self, folder: Path, meta: dict[str, Any]) -> None:
        """Read the codec and the weights (safetensors only; nothing is unpickled)."""
        try:
            self.codec_ = TableCodec(self.schema_, meta["codec"])
        except (KeyError, TypeError, ValueError) as e:
            raise ModelFolderError(
                f"model folder {folder} is corrupted: generator.json's codec is unreadable ({e})"
            ) from None
        model_dir = folder / "model"
        self.text_ = None
        if meta.get("encoding") == "text":
            from healthsynth.generators.tabular_lm._text import TextLM

            if (
                not (model_dir / "config.json").exists()
                or not (model_dir / "model.safetensors").exists()
            ):
                raise ModelFolderError(
                    f"model folder {folder} is incomplete: model/config.json or "
                    "model/model.safetensors is missing; fit the model again"
                )
            from healthsynth.generators._folder import check_no_remote_code

            check_no_remote_code(model_dir, folder)
            self.text_ = TextLM.load(model_dir, self.codec_, self.schema_)
            self.model_ = self.text_.model
            return
        from healthsynth.generators._lm._io import load_numpy

        self.model_ = load_numpy(model_dir, owner=folder, vocab_size=self.codec_.vocab_size)
