"""The prompted-llm sampling run: rounds of requests, reply handling, screening and the record.

One :class:`_Run` carries what a ``sample`` call counts while it prompts: the rows kept, the
real rows sent, the reasons rows were dropped, and why the run stopped.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from healthsynth.data._rows import row_keys
from healthsynth.errors import BudgetError, LLMError
from healthsynth.generators._base import progress_bar, surrogate_ids, warn
from healthsynth.generators._conditions import Condition
from healthsynth.generators.prompted_llm._parse import parse_reply, valid_rows
from healthsynth.generators.prompted_llm._prompts import OUTPUT
from healthsynth.generators.prompted_llm._requests import build_request, meets, repair_request
from healthsynth.generators.prompted_llm._settings import client as make_client

__all__ = ["finish", "sample_rows", "screen"]

#: rounds in a row without a single usable row before sampling gives up
_EMPTY_ROUNDS = 3


def sample_rows(
    gen: Any, n: int, conds: Mapping[str, Condition], rng: np.random.Generator
) -> pd.DataFrame:
    """Prompt until ``n`` rows pass every check; set ``gen.sampling_record_``."""
    started = time.perf_counter()
    run = _Run(gen=gen, conds=conds, rng=rng, client=make_client(gen))
    try:
        run.prompt(n)
    finally:
        run.client.close()
    out = pd.concat(run.kept, ignore_index=True).head(n) if run.kept else pd.DataFrame()
    record = run.record(n, out, started)
    gen.sampling_record_ = record
    _check_outcome(gen, run, record, n, out)
    return finish(gen, out)


@dataclass
class _Run:
    """The state of one sampling run."""

    gen: Any
    conds: Mapping[str, Condition]
    rng: np.random.Generator
    client: Any
    stats: Counter[str] = field(default_factory=Counter)
    dropped: Counter[str] = field(default_factory=Counter)
    curation: Counter[str] = field(default_factory=Counter)
    curation_skipped: str | None = None
    kept: list[pd.DataFrame] = field(default_factory=list)
    have: int = 0
    sent: set[int] = field(default_factory=set)
    real_keys: dict[tuple[Any, ...], int] = field(default_factory=dict)
    rate: float = 0.5  # usable rows per requested row, updated each round
    stopped_by: str = "enough rows"
    empty_rounds: int = 0
    budget_message: str = ""

    def __post_init__(self) -> None:
        self.fmt = OUTPUT[self.gen.prompt]
        self.names = [c.name for c in self.gen.schema_.modelled]
        for i, key in enumerate(row_keys(self.gen.real_, self.gen.schema_.modelled)):
            self.real_keys.setdefault(key, i)

    def prompt(self, n: int) -> None:
        """Send rounds of requests until ``n`` rows are kept or the run must stop."""
        gen = self.gen
        with progress_bar(gen.verbose) as bar:
            task = bar.add_task("prompting", total=n) if gen.verbose else None
            while self.have < n:
                left = gen.max_requests - self.stats["generation_requests"]
                if left <= 0:
                    self.stopped_by = "max_requests"
                    break
                want = math.ceil((n - self.have) / max(gen.rows_per_request * self.rate, 1.0))
                k = int(min(left, max(1, want), 4 * gen.concurrency))
                new, budget_hit = self._round(k)
                asked = k * gen.rows_per_request
                self.rate = max(0.05, len(new) / asked) if asked else self.rate
                if len(new):
                    self.kept.append(new)
                    self.stats["rows_kept"] += len(new)
                    self.have += len(new)
                    self.empty_rounds = 0
                    if task is not None:
                        bar.update(task, completed=min(self.have, n))
                else:
                    self.empty_rounds += 1
                if budget_hit is not None:
                    self.stopped_by = "budget"
                    self.budget_message = str(budget_hit)
                    break
                if self.empty_rounds >= _EMPTY_ROUNDS:
                    self.stopped_by = "no usable rows"
                    break

    def _round(self, k: int) -> tuple[pd.DataFrame, BudgetError | None]:
        """Send ``k`` requests; the rows that pass every check, and a budget stop if one came."""
        batch = [build_request(self.gen, self.conds, self.rng) for _ in range(k)]
        replies = self.client.complete_all([r for r, _ in batch])
        self.stats["generation_requests"] += sum(r is not None for r in replies)
        found: list[pd.DataFrame] = []
        budget_hit = None
        for (request, idx), reply in zip(batch, replies, strict=True):
            if reply is None:
                continue
            if isinstance(reply, BudgetError):
                budget_hit = reply
                continue
            if isinstance(reply, BaseException):
                raise reply
            self.sent.update(int(i) for i in idx)
            rows, budget_hit = self._read(request, reply, budget_hit)
            found.append(rows)
        new = pd.concat(found, ignore_index=True) if found else pd.DataFrame()
        if len(new):
            new = screen(self.gen, new, self.conds, self.real_keys, self.sent, self.stats)
        if len(new) and self.gen.curate:
            new = self._curate(new)
        return new, budget_hit

    def _read(
        self, request: Any, reply: Any, budget_hit: BudgetError | None
    ) -> tuple[pd.DataFrame, BudgetError | None]:
        """The schema-valid rows of one reply (after one repair request for an unreadable one)."""
        fmt, stats = self.fmt, self.stats
        parsed = parse_reply(reply.text, fmt=fmt, truncated=reply.truncated, columns=self.names)
        stats["truncated_replies"] += int(parsed.truncated)
        if parsed.malformed and fmt == "json" and budget_hit is None:
            stats["malformed_replies"] += 1
            stats["repairs_tried"] += 1
            try:
                again = self.client.complete(
                    repair_request(self.gen, request, reply.text, parsed.error)
                )
            except BudgetError as e:
                budget_hit = e
            else:
                fixed = parse_reply(again.text, fmt=fmt, truncated=again.truncated)
                if not fixed.malformed:
                    stats["repairs_ok"] += 1
                    parsed = fixed
        elif parsed.malformed:
            stats["malformed_replies"] += 1
        stats["rows_parsed"] += len(parsed.rows)
        rows, why = valid_rows(parsed.rows, self.gen.schema_)
        self.dropped.update(why)
        return rows, budget_hit

    def _curate(self, new: pd.DataFrame) -> pd.DataFrame:
        """Drop the rows the real data confidently contradicts (CLLM curation)."""
        from healthsynth.generators.prompted_llm._curate import curate

        cur = curate(
            real=self.gen.real_,
            synthetic=new,
            schema=self.gen.schema_,
            seed=int(self.rng.integers(0, 2**31 - 1)),
        )
        self.curation.update(cur.counts())
        self.curation_skipped = cur.skipped
        return new.loc[cur.keep].reset_index(drop=True)

    def record(self, n: int, out: pd.DataFrame, started: float) -> dict[str, Any]:
        """The sampling record: what was asked, kept and dropped, and what the run cost."""
        gen, stats, dropped = self.gen, self.stats, self.dropped
        return {
            "generator": gen.name,
            "prompt": gen.prompt,
            "rows_requested": n,
            "rows_returned": int(len(out)),
            "rows_kept": stats["rows_kept"],
            "stopped_by": self.stopped_by,
            "rows_parsed": stats["rows_parsed"],
            "rows_invalid": int(sum(dropped.values())),
            "invalid_reasons": dict(dropped.most_common(10)),
            "rows_out_of_domain": int(
                sum(v for k, v in dropped.items() if k.endswith(" out of domain"))
            ),
            "domains": {k: d.to_dict() for k, d in gen.domains_.items()},
            "reveal_ranges": bool(gen.reveal_ranges),
            "malformed_replies": stats["malformed_replies"],
            "truncated_replies": stats["truncated_replies"],
            "repairs_tried": stats["repairs_tried"],
            "repairs_ok": stats["repairs_ok"],
            "off_condition": stats["off_condition"],
            "rule_violations": stats["rule_violations"],
            "copies_of_examples": stats["copies_of_examples"],
            "copies_of_training": stats["copies_of_training"],
            "curation": {
                **{g: self.curation.get(g, 0) for g in ("easy", "ambiguous", "hard", "unchecked")},
                "skipped": self.curation_skipped if gen.curate else "curate=False",
            },
            "generation_requests": stats["generation_requests"],
            "examples_sent": len(self.sent),
            "example_rows": sorted(self.sent),
            "endpoint": gen.endpoint,
            "allow_remote_phi": bool(gen.allow_remote_phi),
            "audit_log": None if gen.audit_log is None else str(Path(gen.audit_log).resolve()),
            "seconds": round(time.perf_counter() - started, 3),
            **self.client.usage.to_record(),
        }


def _check_outcome(
    gen: Any, run: _Run, record: Mapping[str, Any], n: int, out: pd.DataFrame
) -> None:
    """Raise when the run gave no row; warn when it gave fewer than ``n``."""
    stopped_by = run.stopped_by
    if stopped_by == "no usable rows" and not len(out):
        raise LLMError(
            f"the LLM's replies held no usable row in {_EMPTY_ROUNDS} rounds of requests "
            f"({record['rows_parsed']} rows parsed, {record['rows_invalid']} outside the "
            f"schema, {record['malformed_replies']} unreadable replies); try another model, "
            "--response-format json_schema, or fewer --rows-per-request"
        )
    if stopped_by == "budget" and not len(out):
        raise BudgetError(f"no usable row was generated before {run.budget_message}")
    if len(out) < n:
        reason = {
            "budget": run.budget_message if stopped_by == "budget" else "",
            "max_requests": f"the limit of {gen.max_requests} requests was reached",
            "no usable rows": f"the last {_EMPTY_ROUNDS} rounds gave no usable row",
        }[stopped_by]
        warn(f"prompted-llm returned {len(out)} of the {n} rows asked for: {reason}")


def screen(
    gen: Any,
    rows: pd.DataFrame,
    conds: Mapping[str, Condition],
    real_keys: dict[tuple[Any, ...], int],
    sent: set[int],
    stats: Counter[str],
) -> pd.DataFrame:
    """Drop rows off the conditions, against the rules, or copying a real row."""
    ok = np.ones(len(rows), bool)
    for name, cond in conds.items():
        ok &= meets(rows[name], cond)
    stats["off_condition"] += int((~ok).sum())
    if gen.rules_ is not None:
        bad = gen.rules_.violations(rows).to_numpy().any(axis=1) & ok
        stats["rule_violations"] += int(bad.sum())
        ok &= ~bad
    for i, key in enumerate(row_keys(rows, gen.schema_.modelled)):
        if ok[i] and key in real_keys:
            ok[i] = False
            if real_keys[key] in sent:
                stats["copies_of_examples"] += 1
            else:
                stats["copies_of_training"] += 1
    return rows.loc[ok].reset_index(drop=True)


def finish(gen: Any, df: pd.DataFrame) -> pd.DataFrame:
    """The output table: every schema column (surrogate identifiers), cast where it can be."""
    out: dict[str, Any] = {}
    for c in gen.schema_.columns:
        if c.kind == "text":
            continue
        if c.kind == "identifier":
            out[c.name] = surrogate_ids(c.dtype, 0, len(df))
        elif c.name in df:
            out[c.name] = df[c.name].to_numpy()
        else:
            out[c.name] = pd.Series([None] * len(df), dtype=object).to_numpy()
    result = pd.DataFrame(out)
    for c in gen.schema_.modelled:
        if c.dtype and not result[c.name].isna().any() and len(result):
            try:
                result[c.name] = result[c.name].astype(c.dtype)
            except (TypeError, ValueError):
                pass
    return result
