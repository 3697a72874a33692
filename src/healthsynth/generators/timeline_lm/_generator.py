"""``timeline-lm``: a causal transformer trained from scratch on patient timelines.

Each patient is one token sequence (see :mod:`._codec`): static attributes and presence flags,
the day of the first event, then events in time order separated by time-gap tokens, each event
an item token and, for labs, value tokens. The model, training loop and sampler are the shared
engine's (:mod:`healthsynth.generators._lm`); this path adds the codec, the objective
(:mod:`._objective`) and the masks (:mod:`._policy`). Sampling draws the static attributes
first (with any conditions fixed, as tabular-lm does), then the timeline under constraints
that make every timeline valid: time never goes backwards, nothing happens after the end of
follow-up (so nothing after death), sex- and age-specific codes fit the patient, lab values
stay in their plausible range, and the items of a cohort condition (``has=diabetes``) occur.
After training, each item's prevalence is matched to the data (:mod:`._calibrate`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from healthsynth.data import Dataset
from healthsynth.generators._base import Generator, warn
from healthsynth.generators._lm._fit import fit_resources
from healthsynth.generators._lm._infer import n_parameters
from healthsynth.generators.timeline_lm._calibrate import calibrate_record
from healthsynth.generators.timeline_lm._checks import (
    check_data,
    fit_code_map,
    learn_structure,
    validate_params,
)
from healthsynth.generators.timeline_lm._codec import TimelineCodec
from healthsynth.generators.timeline_lm._output import assemble, template
from healthsynth.generators.timeline_lm._sampling import draw_patients, resolve, timeline_masks

__all__ = ["TimelineLM"]

#: tokens of patients in a DP-SGD batch at the least (see :meth:`TimelineLM.fit`)
_DP_BATCH_TOKENS = 12_000


class TimelineLM(Generator):
    """Longitudinal patients (a patients table and event tables) from a timeline transformer.

    ``fit`` takes a :class:`healthsynth.data.Dataset`; ``sample`` returns one shaped like it.

    Parameters
    ----------
    epochs
        Most passes over the training patients; training stops earlier when the validation
        loss has not improved for ``patience`` epochs or ``max_time`` seconds have passed.
    token_budget
        Tokens per training batch (patients are grouped by length). Small batches mean more
        optimiser steps per epoch: on a 2,000-patient NAFLD subset, 3,000 tokens reached a
        validation loss of 1.88 nats/token in 4 epochs where 12,000 reached 2.09
        (docs/timelines.md).
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
    joint_values
        One token per (item, value) for items whose values take one token each (at most
        ``max_discrete`` distinct values, like NAFLD's labs): a lab result is then one token
        instead of two, so timelines are shorter.
    time_context
        Tell the model, through each position's token type, where the timeline stands in time:
        before or after day 0, and how much follow-up is left after the latest event (see
        :mod:`._codec`). Without it a small model loses track of time and ends timelines early.
    max_flags
        Most items with a presence flag (the most frequent ones); only flagged items can be
        conditioned on with ``has=...``.
    validation_fraction
        Share of patients held out for early stopping.
    patience
        Epochs without improvement before stopping.
    average_half_life
        Keep a moving average of the weights with this half-life in epochs (``None``: off).
    perm_prob
        Share of training sequences whose static attributes come in a shuffled order, so that
        any of them can be conditioned on.
    max_time
        Wall-clock limit for training, in seconds.
    learn_structure
        Learn the event log's structure from the training patients and keep it while sampling
        (see :mod:`._structure`): once-only items never repeat, terminal items (death) end the
        timeline and wait for the items every patient has, each item stays within its observed
        count and days since the first event, a death the data always have on the end of
        follow-up is put on the end day, and an item always on one day stays on it. The
        training record lists what was learned.
    structure
        Rules that replace the learned ones, by key: ``{"once": [...], "terminal": [...],
        "max_count": {item: n}, "time_since_start": {item: [low, high]}, "at_end": [...],
        "fixed_day": {item: day}}``; items are named ``table/item`` (or ``item`` when unique).
        A rule the training data break is refused.
    calibrate
        After training, match each item's share of patients to the training patients' with
        offsets on the logits, one per item and one on the end of a timeline (see
        :mod:`._calibrate`; skipped under DP).
    code_map
        Deprecated: give the code mapping to :meth:`fit` instead.
    sample_batch_size
        Patients in a block: each block has its own random streams from the seed, and with
        two or more threads two blocks are decoded at once (each with its own cache).
    temperature
        Sampling temperature.
    dp_epsilon, dp_delta, dp_max_grad_norm, dp_accountant
        Differential privacy per patient: with ``dp_epsilon`` set, training is DP-SGD
        (Opacus, extra ``dp``) spending at most (ε, δ) for each patient's whole record;
        ``dp_delta`` defaults to 0.1/n. All patients train (no validation split) for
        ``epochs`` epochs without early stopping, in Poisson batches of about
        ``max(token_budget, 12_000)`` tokens (8 to 256 patients: DP-SGD's noise per patient
        shrinks as the batch grows, so DP batches stay at the size of the earlier default
        even though plain training now takes 3,000-token batches). See
        :class:`healthsynth.generators.tabular_lm.TabularLM` and ``docs/privacy.md``.
    threads
        Torch threads for fitting and sampling; ``None`` chooses them for the model size and
        the machine's load (see :class:`healthsynth.generators.tabular_lm.TabularLM`).
    seed
        Seed for the split, initialization and training order (``sample`` takes its own).
    verbose
        Show a progress bar.
    """

    name: ClassVar[str] = "timeline-lm"
    data_kind: ClassVar[str] = "timelines"
    format_version: ClassVar[int] = 2

    def __init__(
        self,
        *,
        epochs: int = 30,
        token_budget: int = 3_000,
        learning_rate: float = 2e-3,
        n_embd: int = 96,
        n_layer: int = 3,
        n_head: int = 4,
        dropout: float = 0.1,
        n_bins: int = 32,
        n_sub_bins: int = 16,
        max_discrete: int = 256,
        max_tokens: int = 512,
        joint_values: bool = False,
        time_context: bool = True,
        max_flags: int = 64,
        validation_fraction: float = 0.1,
        patience: int = 3,
        average_half_life: float | None = None,
        perm_prob: float = 0.5,
        max_time: float | None = None,
        learn_structure: bool = True,
        structure: Mapping[str, Any] | None = None,
        calibrate: bool = True,
        code_map: Any = None,
        sample_batch_size: int = 1024,
        temperature: float = 1.0,
        dp_epsilon: float | None = None,
        dp_delta: float | None = None,
        dp_max_grad_norm: float | None = None,
        dp_accountant: str = "rdp",
        threads: int | None = None,
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
        self.joint_values = joint_values
        self.time_context = time_context
        self.max_flags = max_flags
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.average_half_life = average_half_life
        self.perm_prob = perm_prob
        self.max_time = max_time
        self.learn_structure = learn_structure
        self.structure = structure
        self.calibrate = calibrate
        self.code_map = code_map
        self.sample_batch_size = sample_batch_size
        self.temperature = temperature
        self.dp_epsilon = dp_epsilon
        self.dp_delta = dp_delta
        self.dp_max_grad_norm = dp_max_grad_norm
        self.dp_accountant = dp_accountant
        self.threads = threads
        self.seed = seed
        self.verbose = verbose

    # -- settings -------------------------------------------------------------------------
    def _json_params(self) -> dict[str, Any]:
        """The settings as JSON (the code mapping is saved apart, in code_map.json)."""
        params = super()._json_params()
        params["code_map"] = None
        return params

    @classmethod
    def _params_from_json(cls, params: dict[str, Any]) -> dict[str, Any]:
        # format version 1 saved the mapping's name here; code_map.json holds the mapping
        return {k: v for k, v in params.items() if k != "code_map"}

    # -- fit ------------------------------------------------------------------------------
    def fit(self, data: Dataset, *, code_map: Any = None) -> TimelineLM:
        """Learn from a :class:`~healthsynth.data.Dataset` of patients and events.

        ``code_map`` maps items to ICD-10-CM / LOINC codes (a
        :class:`healthsynth.knowledge.CodeMap`, a packaged name such as ``"nafld"``, or a CSV
        path): its sex- and age-specific codes and plausible lab ranges constrain sampling.
        """
        from healthsynth.generators._lm._fit import fit_model
        from healthsynth.generators._lm._threads import choose_threads
        from healthsynth.generators._lm._train import TrainSettings
        from healthsynth.generators.timeline_lm._objective import build_model

        validate_params(self)
        check_data(data)
        started = time.perf_counter()
        cpu0 = time.process_time()
        events = data.events()
        mapping = fit_code_map(code_map, self.code_map, events)
        budget = self._budget(data.n_patients)
        codec, objective, info = self._encode(data, private=budget is not None)
        structure = learn_structure(self, data, events, codec)
        model = build_model(
            codec,
            n_embd=self.n_embd,
            n_layer=self.n_layer,
            n_head=self.n_head,
            dropout=float(self.dropout),
            seed=self.seed,
        )
        settings = TrainSettings(
            epochs=self.epochs,
            learning_rate=float(self.learning_rate),
            weight_decay=0.01,
            patience=self.patience,
            max_time=self.max_time,
            seed=self.seed,
            average_half_life=self.average_half_life,
        )
        work = model.n_parameters() * self.token_budget
        threads = choose_threads(requested=self.threads, work=work)
        if budget is None:
            record = fit_model(model, objective, settings, threads=threads, verbose=self.verbose)
        else:
            record = self._fit_private(model, objective, settings, budget, info, threads)
        if info["timelines_cut"]:
            warn(
                f"{info['timelines_cut']} of {info['n_patients']} training timelines were longer "
                f"than max_tokens={self.max_tokens} tokens and were cut; raise max_tokens to "
                "learn them whole"
            )
        self.model_: Any = model
        self.codec_, self.code_map_ = codec, mapping
        self.rules_ = None
        self.sampler_ = self.calibration_ = None
        self.structure_ = structure
        self.template_ = template(data)
        self.schema_ = codec.static_schema
        calibration = calibrate_record(self, events, data.key, data.n_patients, budget)
        self.training_record_ = {
            **record,
            "generator": self.name,
            "params": self._json_params(),
            "code_map": mapping.name if mapping is not None else None,
            **info,
            "n_events": int(len(events)),
            "n_items": len(codec.items),
            "n_flags": len(codec.flag_items),
            "death_event": data.death_event,
            "structure": structure.summary(),
            "calibration": calibration,
            "vocab_size": codec.vocab_size,
            "n_parameters": model.n_parameters(),
            **fit_resources(started, cpu0),
        }
        return self

    def _fit_private(
        self, model: Any, objective: Any, settings: Any, budget: Any, info: Any, threads: Any
    ) -> dict[str, Any]:
        """Train ``model`` with DP-SGD within ``budget``; the training record."""
        from healthsynth.generators._lm._dp import OUTSIDE_GUARANTEE, fit_private

        # patients per Poisson batch: as many as _DP_BATCH_TOKENS tokens hold (larger
        # batches than plain training: DP-SGD's noise per example shrinks with the batch)
        tokens = max(self.token_budget, _DP_BATCH_TOKENS)
        batch = np.clip(tokens / info["tokens_per_patient_mean"], 8, 256)
        return fit_private(
            model,
            objective,
            settings,
            budget=budget,
            batch=float(min(batch, info["n_train_patients"])),
            threads=threads,
            verbose=self.verbose,
            outside=OUTSIDE_GUARANTEE[self.name],
        )

    def _budget(self, n_patients: int) -> Any:
        """The differential-privacy budget asked for (None: none), checked before any work."""
        from healthsynth.generators._lm._dp import check_budget

        return check_budget(
            epsilon=self.dp_epsilon,
            delta=self.dp_delta,
            max_grad_norm=self.dp_max_grad_norm,
            accountant=self.dp_accountant,
            n_examples=n_patients,
            unit="patients",
        )

    def _encode(
        self, data: Dataset, *, private: bool = False
    ) -> tuple[TimelineCodec, Any, dict[str, Any]]:
        """The codec, the training objective (a seeded split by patient) and sizes.

        Under DP-SGD (``private``) every patient trains: there is no validation split.
        """
        from healthsynth.generators.timeline_lm._training import encode

        return encode(self, data, private=private)

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
        patient has at least one such event). Same ``seed``, same patients; ``None`` draws
        fresh randomness. Patient IDs are numbered from ``id_start + 1``.
        """
        from healthsynth.generators._lm._threads import choose_threads, compute_threads

        self._check_fitted()
        n = self._check_n(n, "patients")
        static_conds, required_items = resolve(
            self.codec_, self.template_["roles"]["key"], conditions
        )
        work = n_parameters(self.model_) * min(n, self.sample_batch_size)
        choice = choose_threads(requested=self.threads, work=work)
        self.sampling_threads_ = {"threads": choice.n, "reason": choice.reason}  # run records
        workers = choice.n
        # threads over chunks of patients, each on one BLAS thread: small products gain
        # nothing from BLAS threads, which spin while they wait
        with compute_threads(1):
            return self._sample(
                n, conditions, static_conds, required_items, seed, id_start, workers
            )

    def _masks(self) -> Any:
        if getattr(self, "sampler_", None) is None:
            self.sampler_ = timeline_masks(
                self.codec_, self.code_map_, self.structure_, getattr(self, "calibration_", None)
            )
        return self.sampler_

    def _sample(
        self,
        n: int,
        conditions: Mapping[str, Any] | None,
        static_conds: dict[str, Any],
        required_items: list[int],
        seed: int | None,
        id_start: int,
        workers: int = 1,
    ) -> Dataset:
        patients, events = draw_patients(
            self,
            n,
            conditions=conditions,
            static_conds=static_conds,
            required_items=required_items,
            seed=seed,
            id_start=id_start,
            workers=workers,
        )
        return assemble(self.template_, patients, events)

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
        csv_safe: bool = False,
    ) -> Path:
        """Sample ``n`` patients into ``folder`` as CSV, Parquet, OMOP, MEDS or FHIR.

        CSV and Parquet are written block by block (memory stays bounded); the standard
        formats are written from the whole sample. The folder appears only when complete.
        ``csv_safe`` defuses text cells a spreadsheet would run as a formula (``fmt="csv"``).
        """
        from healthsynth.generators.timeline_lm._files import write_sample_folder

        self._check_fitted()
        return write_sample_folder(
            self,
            n,
            folder,
            fmt=fmt,
            conditions=conditions,
            seed=seed,
            block_size=block_size,
            csv_safe=csv_safe,
        )

    # -- model folders --------------------------------------------------------------------
    def _save_state(self, folder: Path) -> dict[str, Any]:
        """The weights (a Hugging Face folder); codec, template, structure and calibration."""
        from healthsynth.generators.timeline_lm._files import save_state

        return save_state(self, folder)

    def _load_state(self, folder: Path, meta: dict[str, Any]) -> None:
        """Read the codec, template and weights (safetensors only; nothing is unpickled)."""
        from healthsynth.generators.timeline_lm._files import load_state

        load_state(self, folder, meta)
