"""Constrained decoding of rows written as text, as a policy of the shared sampler.

Each row is decoded column by column in the row's order (conditioned columns first). At every
step a row either takes a *forced* token (the ``name is`` part of the next column, a separator,
the rest of a multi-token value) or chooses among the tokens that keep its text parseable and
valid:

* a categorical value follows a token trie of the column's training categories (and the
  condition's values);
* a number is written one character per token, and only characters that can still end in a
  number inside the column's range (and the condition's) at its precision are allowed; the
  separator is allowed once the number is complete;
* a finished row is fed the end-of-text token until every row is done.

Unlike the slot paths, the masks are built per row in Python and no row leaves the batch
before all are done (the pretrained model's own cache is used); this path exists to bring a
pretrained model's knowledge, not speed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from healthsynth.generators._conditions import Condition

__all__ = ["TextPolicy", "Trie"]


class Trie:
    def __init__(self) -> None:
        self.children: dict[int, Trie] = {}
        self.value: Any = None
        self.terminal = False

    def add(self, ids: list[int], value: Any) -> None:
        node = self
        for i in ids:
            node = node.children.setdefault(i, Trie())
        node.terminal, node.value = True, value


class TextPolicy:
    """Decode ``n`` rows of text for a ``TextLM`` in one column ``order`` under ``conds``."""

    def __init__(
        self, lm: Any, n: int, order: list[int], conds: dict[str, Condition], vocab: int
    ) -> None:
        self.lm, self.n, self.order, self.conds, self.vocab = lm, n, order, conds, vocab
        self.rows: list[dict[str, Any]] = [{} for _ in range(n)]
        self.forced: list[list[int]] = [list(lm.heads[order[0]]) for _ in range(n)]
        self.pos = [0] * n
        self.text = [""] * n
        self.node: list[Any] = [None] * n
        self.done = [False] * n

    def prefix(self) -> tuple[np.ndarray, None]:
        return np.full((self.n, 1), self.lm.bos, np.int64), None

    def block(self) -> tuple[int, int]:
        return 0, self.vocab

    def allowed(self, logits: np.ndarray) -> np.ndarray:
        mask = np.zeros((self.n, self.vocab), bool)
        for i in range(self.n):
            if self.done[i]:
                mask[i, self.lm.eos] = True
            elif self.forced[i]:
                mask[i, self.forced[i][0]] = True
            else:
                ci = self.order[self.pos[i]]
                cond = self.conds.get(self.lm.columns[ci].name)
                last = self.pos[i] == len(self.order) - 1
                mask[i, self._choices(ci, self.text[i], self.node[i], cond, last)] = True
        return mask

    def advance(self, pick: np.ndarray) -> tuple[np.ndarray, None, None] | None:
        for i, tok in enumerate(pick.tolist()):
            if self.done[i]:
                continue
            if self.forced[i]:
                self.forced[i].pop(0)
                if not self.forced[i] and self.pos[i] < len(self.order):
                    self.node[i] = self.lm.tries.get(self.lm.columns[self.order[self.pos[i]]].name)
            else:
                self._take(i, tok)
            if not self.forced[i] and self.pos[i] >= len(self.order):
                self.done[i] = True
        if all(self.done):
            return None
        return pick[:, None].astype(np.int64), None, None

    def select(self, keep: np.ndarray) -> None:
        raise ValueError("text rows stay in the batch until all are done")

    def _choices(
        self, ci: int, text: str, node: Any, cond: Condition | None, last: bool
    ) -> list[int]:
        lm = self.lm
        name = lm.columns[ci].name
        cc = lm.codec.codecs[name]
        stop = lm.eos if last else lm.sep[0]
        if cc.mode == "cat":
            assert node is not None
            ids = [t for t, child in node.children.items() if _subtree_ok(child, cond)]
            if (
                node.terminal
                and node is not lm.tries[name]
                and (cond is None or _value_ok(node.value, cond))
            ):
                ids.append(stop)
            return ids
        ids, complete = self._numeric(ci, text, cond)
        if text == "" and cc.has_na and cond is None:
            ids.append(lm.missing[0])
        if complete:
            ids.append(stop)
        return ids

    def _numeric(self, ci: int, text: str, cond: Condition | None) -> tuple[list[int], bool]:
        """Allowed next character tokens after ``text``, and whether ``text`` is complete."""
        lm = self.lm
        c = lm.columns[ci]
        span = lm.ranges[c.name]
        if span is None:  # no value was ever present: only "missing" can be written
            return [], False
        lo, hi = span
        if cond is not None:
            lo, hi = max(lo, cond.low), min(hi, cond.high)
        prec = c.precision if c.precision is not None else 6
        allowed = [lm.chars[ch] for ch in "0123456789.-" if _feasible(text + ch, lo, hi, prec)]
        return allowed, _complete(text, lo, hi, prec)

    def _take(self, i: int, tok: int) -> None:
        """Move row ``i`` on after it chose ``tok``."""
        lm, order, pos = self.lm, self.order, self.pos
        ci = order[pos[i]]
        name = lm.columns[ci].name
        cc = lm.codec.codecs[name]
        last = pos[i] == len(order) - 1
        stop = lm.eos if last else lm.sep[0]
        after = [] if last else list(lm.sep[1:]) + list(lm.heads[order[pos[i] + 1]])

        def finish(value: Any, rest: list[int]) -> None:
            self.rows[i][name] = value
            self.forced[i] = rest
            self.text[i] = ""
            pos[i] += 1

        if cc.mode == "cat":
            cur = self.node[i]
            if tok == stop and cur is not None and cur.terminal and tok not in cur.children:
                finish(cur.value, after)
                return
            child = cur.children[tok] if cur is not None else None
            self.node[i] = child
            if child is not None and child.terminal and not child.children:
                finish(child.value, [stop] + after)
            return
        if self.text[i] == "" and cc.has_na and tok == lm.missing[0] and tok not in lm.char_of:
            finish(None, list(lm.missing[1:]) + [stop] + after)
            return
        if tok == stop and tok not in lm.char_of:
            finish(float(self.text[i]), after)
            return
        self.text[i] += lm.char_of[tok]


def _feasible(prefix: str, lo: float, hi: float, prec: int) -> bool:
    """Whether ``prefix`` extends to a number in [lo, hi] with at most ``prec`` decimals."""
    neg = prefix.startswith("-")
    body = prefix[1:] if neg else prefix
    if body.count(".") > 1 or "-" in body:
        return False
    if "." in body:
        if prec == 0:
            return False
        ip, fp = body.split(".")
        if ip == "" or len(fp) > prec:
            return False
    else:
        ip, fp = body, None
    if len(ip) > 1 and ip[0] == "0":
        return False
    if ip == "":
        return (lo < 0) if neg else (hi >= 0)
    unit = 10.0 ** (-prec)
    spans = []  # closed ranges of magnitudes reachable from this prefix
    if fp is None:
        base = int(ip)
        for k in range(16):
            spans.append((base * 10**k, (base + 1) * 10**k - unit))
            if base == 0:
                break
    else:
        v = float(f"{ip}.{fp}" if fp else ip)
        spans.append((v, v + 10.0 ** (-len(fp)) - unit if len(fp) < prec else v))
    for a, b in spans:
        x0, x1 = (-b, -a) if neg else (a, b)
        if x1 >= lo - 1e-9 and x0 <= hi + 1e-9:
            return True
    return False


def _complete(text: str, lo: float, hi: float, prec: int) -> bool:
    if text in ("", "-") or text.endswith("."):
        return False
    try:
        v = float(text)
    except ValueError:
        return False
    return lo - 1e-12 <= v <= hi + 1e-12


def _value_ok(v: Any, cond: Condition) -> bool:
    if v is None:
        return False
    if cond.values is not None:
        return any(v == a or str(v) == str(a) for a in cond.values)
    try:
        return cond.low <= float(v) <= cond.high
    except (TypeError, ValueError):
        return False


def _subtree_ok(node: Trie, cond: Condition | None) -> bool:
    if cond is None:
        return True
    if node.terminal and _value_ok(node.value, cond):
        return True
    return any(_subtree_ok(ch, cond) for ch in node.children.values())
