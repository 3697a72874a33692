"""The ``tabular-lm`` generator."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from healthsynth.data import Schema
from healthsynth.errors import ConditionError, ModelFolderError, ParameterError
from healthsynth.generators._base import Generator, as_rules, surrogate_ids
from healthsynth.generators._conditions import resolve_conditions
from healthsynth.generators._folder import jsonable
from healthsynth.generators._lm._fit import fit_resources
from healthsynth.generators._lm._infer import n_parameters
from healthsynth.generators.tabular_lm import _structure as structure
from healthsynth.generators.tabular_lm._checks import MIN_ROWS, check_data, validate_params
from healthsynth.generators.tabular_lm._codec import TableCodec
from healthsynth.generators.tabular_lm._labels import choose_label_model, relabel
from healthsynth.generators.tabular_lm._prior import pretrained_path
from healthsynth.generators.tabular_lm._sampling import sample_rows
from healthsynth.generators.tabular_lm._training import dp_budget, fit_slots, fit_text, schedule

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
    early_stopping
        ``True``: stop after ``patience`` epochs without improvement and keep the weights with
        the lowest validation loss. ``False``: train every epoch and keep the last weights
        (a fixed schedule; DP-SGD always trains this way).
    perm_prob
        Share of training rows whose columns are reordered (a random subset first), which is
        what lets sampling condition on any columns.
    target_share
        Share of training rows whose target column (the schema's) comes last, so the model
        learns p(target | every other column) directly.
    target_last
        Sample the other columns first and the target last, from the model's own
        p(target | every other column) (unless a condition fixes the target).
    label_model
        Opt-in hybrid: fit a logistic regression of the target on the other columns of the
        real rows (:mod:`healthsynth.generators._label_model`) and redraw the target of a
        ``label_share`` of the sampled rows from its p(target | row); the other columns are
        sampled first. It uses a second model of the real rows, saved with the generator:
        its utility gain and privacy cost are in ``docs/small-data.md``. Needs a categorical
        or boolean target; a condition on the target keeps the condition's values. ``None``
        decides from the data: on for a categorical or boolean target and fewer than
        ``LABEL_MODEL_MAX_ROWS`` rows, off otherwise; the training record says which and why.
        With ``dp_epsilon`` the regression is trained with DP-SGD on a quarter of the budget
        (:mod:`healthsynth.generators._label_model_dp`); the network gets the rest.
    label_kind
        Which label model: ``"auto"`` (the default: ``"logistic"`` or ``"spline"``, whichever
        has the lower five-fold cross-validated log-loss on the training rows; the training
        record gives both), ``"logistic"`` (an L2 logistic regression), ``"spline"`` (the same
        with cubic spline terms of each number, so its effect may bend) or ``"boosted"``
        (gradient-boosted trees whose every leaf averages at least 20 real rows; they carry
        interactions and sharp thresholds, and were better on some tables of a few hundred
        rows and worse on others). Measured in ``docs/small-data.md``. Under ``dp_epsilon``
        only the logistic one is trained (``"auto"`` is then ``"logistic"``).
    label_share
        Share of rows whose target the label model redraws (the rest keep the LM's own).
    column_order
        Orders between numeric or date columns that every sampled row keeps ("admitted <=
        discharged"). ``"learn"`` keeps each order that holds in every training row and that
        the columns' ranges do not explain (:func:`healthsynth.knowledge.learn_orders`; the
        training record lists them), with the chance that the two are equal (per value of a
        categorical column where one decides it: "ptime = futime when pstat is 0" is kept in
        every row); ``"off"`` keeps none; a list of ``"a <= b"`` (or one comma-separated
        string) keeps exactly those, each checked against the data.
    relations
        ``"learn"`` (the default) keeps every exact sum between columns that holds in all
        training rows ("fu.date = accept.dt + futime", "wt82 = wt71 + wt82_71"): the sum is
        recomputed from its parts in every sampled row
        (:func:`healthsynth.knowledge.learn_relations`), every group of columns missing on
        exactly the same training rows stays missing together
        (:func:`healthsynth.knowledge.learn_missing_together`), and columns missing exactly
        when a category has one value stay so (:func:`healthsynth.knowledge.learn_missing_when`);
        the training record lists them. ``"off"`` keeps none.
    max_time
        Wall-clock limit for training, in seconds.
    privacy_stop
        Every ``privacy_every`` epochs, sample as many rows as the validation part and stop when
        significantly more than half of them are closer to training rows than to validation
        rows (the model starts to copy); the last weights that passed are kept.
    base_model
        Path of a local pretrained causal LM folder (GPT-2 or Llama class) to fine-tune.
    prior
        Folder of a prior pretrained on public health tables (``healthsynth prior build``,
        :mod:`._prior`) to fine-tune instead of training from scratch.
    sample_batch_size
        Rows decoded at once.
    temperature
        Sampling temperature (1.0 samples the learned distribution).
    herding
        Rows drawn per row returned: ``sample(n)`` draws ``herding × n`` rows and keeps the
        ``n`` that spread most like all of them (kernel herding, :mod:`.._herding`); 1 returns
        independent draws. ``"auto"``: 10 for at most 2,000 rows, else 1.
    dp_epsilon, dp_delta, dp_max_grad_norm, dp_accountant
        Differential privacy: with ``dp_epsilon`` set, training is DP-SGD (Opacus, extra
        ``dp``) spending at most (ε, δ) under the accountant (``rdp`` or ``prv``); ``dp_delta``
        defaults to 0.1/n and ``dp_max_grad_norm`` (the per-row clipping norm) to 1. All rows
        train (no validation split), on a fixed schedule without early stopping or the
        privacy-aware stop; ``batch_size`` is then the expected size of a Poisson batch. What
        the guarantee covers and what it does not is in ``docs/privacy.md``. A DP fit is not
        reproducible: its batches and noise come from the operating system's entropy.
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
        early_stopping: bool = True,
        perm_prob: float = 0.5,
        target_share: float = 0.0,
        target_last: bool = False,
        label_model: bool | None = None,
        label_kind: str = "auto",
        label_share: float = 1.0,
        column_order: str | Sequence[str] = "learn",
        relations: str = "learn",
        max_time: float | None = None,
        privacy_stop: bool = True,
        privacy_every: int = 5,
        base_model: str | Path | None = None,
        prior: str | Path | None = None,
        sample_batch_size: int = 1024,
        temperature: float = 1.0,
        herding: int | str = "auto",
        dp_epsilon: float | None = None,
        dp_delta: float | None = None,
        dp_max_grad_norm: float | None = None,
        dp_accountant: str = "rdp",
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
        self.early_stopping = early_stopping
        self.perm_prob = perm_prob
        self.target_share = target_share
        self.target_last = target_last
        self.label_model = label_model
        self.label_kind = label_kind
        self.label_share = label_share
        self.column_order = column_order
        self.relations = relations
        self.max_time = max_time
        self.privacy_stop = privacy_stop
        self.privacy_every = privacy_every
        self.base_model = base_model
        self.prior = prior
        self.sample_batch_size = sample_batch_size
        self.temperature = temperature
        self.herding = herding
        self.dp_epsilon = dp_epsilon
        self.dp_delta = dp_delta
        self.dp_max_grad_norm = dp_max_grad_norm
        self.dp_accountant = dp_accountant
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
        budget = dp_budget(self, len(data))
        rng = np.random.default_rng(self.seed)
        order = rng.permutation(len(data))
        # at least 40 validation rows (at most a quarter of the data): early stopping on fewer
        # rows follows noise. DP-SGD trains on every row, on a fixed schedule
        n_val = int(min(max(self.validation_fraction * len(data), 40), len(data) // 4))
        n_val = 0 if budget is not None else max(n_val, 2)
        self.validation_rows_ = np.sort(order[:n_val])  # positions in data, for audits
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
        self.label_model_, label_note, label_plan = choose_label_model(
            self.label_model, data, schema, budget=budget, kind=self.label_kind, seed=self.seed
        )
        learned = structure.learn(self, data, schema)
        # orders and sums hold from the trained model on: the samples that judge training
        # (the privacy-aware stop) are the model's own, as without them
        structure.keep(self, None)
        if self.rules_ is not None and pretrained_path(self) is None:
            from healthsynth.generators.tabular_lm._rules import RuleDecoder

            RuleDecoder(self.rules_, codec)  # refuses rules it cannot enforce, before training

        n_train = len(train_df)
        batch_size, epochs, lr = schedule(self, n_train, budget)
        dropout = self.dropout if self.dropout is not None else (0.2 if n_train < 1000 else 0.1)
        if pretrained_path(self) is None:
            model_budget = budget if label_plan is None else label_plan.generator
            record = fit_slots(
                self, train_df, val_df, rng, epochs, batch_size, lr, dropout, budget=model_budget
            )
        else:
            record = fit_text(self, train_df, val_df, batch_size, lr)
        structure.keep(self, learned, data)
        self.training_record_ = {
            **record,
            "generator": self.name,
            "params": jsonable(self.get_params()),
            "batch_size": record.get("batch_size", batch_size),
            "learning_rate": lr,
            "dropout": dropout,
            "n_parameters": n_parameters(self.model_),
            "n_rows": int(len(data)),
            "n_train_rows": int(n_train),
            "n_validation_rows": int(n_val),
            "n_columns_modelled": len(schema.modelled),
            "n_tokens_per_row": codec.n_slots,
            "label_model": label_note,
            "label_model_kind": None if self.label_model_ is None else self.label_model_.kind,
            **learned["record"],
            "vocab_size": codec.vocab_size,
            **fit_resources(started, cpu0),
        }
        if label_plan is not None:
            self._fit_private_label_model(data, schema, budget, label_plan)
            self.training_record_.update(fit_resources(started, cpu0))
        return self

    def _fit_private_label_model(
        self, data: pd.DataFrame, schema: Schema, budget: Any, plan: Any
    ) -> None:
        """Train the label model with DP-SGD on its part of ``budget``; record both parts.

        The numbers' scale comes from rows of the DP model just trained (post-processing).
        """
        from healthsynth.generators._label_model_dp import (
            DP_LABEL_SYNTHETIC_ROWS,
            fit_private_label_model,
        )
        from healthsynth.generators._lm._threads import choose_threads

        synthetic = self.sample(DP_LABEL_SYNTHETIC_ROWS, seed=self.seed)
        self.label_model_, part = fit_private_label_model(
            data, schema, synthetic, plan, threads=choose_threads(requested=self.threads, work=0)
        )
        self.training_record_["label_model_kind"] = self.label_model_.kind
        dp = self.training_record_["dp"]
        own = {
            "epsilon": dp["epsilon"],
            "epsilon_target": plan.generator.epsilon,
            "delta": plan.generator.delta,
            "what": "the network's DP-SGD (the figures above)",
        }
        dp.update(
            epsilon=round(dp["epsilon"] + part["epsilon"], 4),
            epsilon_target=budget.epsilon,
            delta=budget.delta,
            composition="basic: the network's and the label model's ε and δ add up",
            parts={"network": own, "label_model": part},
        )

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
        from healthsynth.generators._herding import herd, pool_factor
        from healthsynth.generators._lm._threads import choose_threads, compute_threads

        self._check_fitted()
        n = self._check_n(n)
        factor = pool_factor(self.herding, n)
        drawn = n * factor
        self.sampling_herding_ = {"setting": self.herding, "pool_factor": factor}
        conds = resolve_conditions(conditions, self.schema_)
        work = n_parameters(self.model_) * min(drawn, self.sample_batch_size)
        choice = choose_threads(requested=self.threads, work=work)
        self.sampling_threads_ = {"threads": choice.n, "reason": choice.reason}  # run records
        threads = choice.n
        if self.text_ is not None:  # torch runs the pretrained model
            with compute_threads(threads):
                df = sample_rows(self, drawn, conds, seed=seed)
        else:  # blocks of rows in parallel, each on one BLAS thread
            with compute_threads(1):
                df = sample_rows(self, drawn, conds, seed=seed, workers=threads)
        if self.label_model_ is not None and self.label_model_.target not in conds:
            df = relabel(self, df, seed)
        if drawn > n:
            df = df.iloc[herd(df, n, self.schema_)].reset_index(drop=True)
        return self._finish(df, start=0)

    def score_rows(self, data: pd.DataFrame) -> np.ndarray:
        """Log-likelihood of each row of ``data`` under the model, in nats.

        The rows are read at the model's resolution (a category, a distinct value, or the
        bin and sub-interval a number falls in) and scored as the model was trained, column
        by column in table order. A row the model memorised scores far above rows like it:
        the canary audit (:mod:`healthsynth.audit`) ranks records this way. Values outside
        what the model knows are an error (a category it never saw); numbers outside the
        observed range count as the nearest bin.
        """
        from healthsynth.generators._lm._score import slot_log_likelihood

        self._check_fitted()
        if self.text_ is not None:
            raise ParameterError(
                "score_rows needs the from-scratch model; this one fine-tunes "
                f"{pretrained_path(self)}"
            )
        missing = [c.name for c in self.schema_.modelled if c.name not in data.columns]
        if missing:
            raise ConditionError(
                f"the rows to score lack column '{missing[0]}' of the model's schema; give "
                "every modelled column"
            )
        local = self.codec_.encode(data.reset_index(drop=True), np.random.default_rng(0))
        return slot_log_likelihood(self.model_, self.codec_, local)

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
        state = {
            "encoding": "text" if self.text_ is not None else "slots",
            "codec": self.codec_.to_dict(),
        }
        if self.label_model_ is not None:
            state["label_model"] = self.label_model_.to_dict()
        state.update(structure.state(self))
        return state

    def _load_state(self, folder: Path, meta: dict[str, Any]) -> None:
        """Read the codec and the weights (safetensors only; nothing is unpickled)."""
        try:
            self.codec_ = TableCodec(self.schema_, meta["codec"])
        except (KeyError, TypeError, ValueError) as e:
            raise ModelFolderError(
                f"model folder {folder} is corrupted: generator.json's codec is unreadable ({e})"
            ) from None
        structure.read(self, meta, folder)
        self.label_model_ = None
        if meta.get("label_model") is not None:
            from healthsynth.generators._label_model import LabelModel

            try:
                self.label_model_ = LabelModel.from_dict(meta["label_model"])
            except (KeyError, TypeError, ValueError) as e:
                raise ModelFolderError(
                    f"model folder {folder} is corrupted: generator.json's label model is "
                    f"unreadable ({e}); fit the model again"
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
