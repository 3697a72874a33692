"""What timeline-lm trains on: the codec, the encoded patients and the training objective."""

from __future__ import annotations

from typing import Any

import numpy as np

from healthsynth.data import Dataset
from healthsynth.generators.timeline_lm._codec import TimelineCodec

__all__ = ["encode"]


def encode(gen: Any, data: Dataset, *, private: bool) -> tuple[TimelineCodec, Any, dict[str, Any]]:
    """The codec, the training objective (a seeded split by patient) and sizes, for ``gen``.

    Under DP-SGD (``private``) every patient trains: there is no validation split. Sets
    ``gen.validation_patients_``.
    """
    from healthsynth.generators.timeline_lm._objective import TimelineObjective, Timelines

    codec = TimelineCodec.fit(
        data,
        n_bins=gen.n_bins,
        n_sub_bins=gen.n_sub_bins,
        max_discrete=gen.max_discrete,
        max_flags=gen.max_flags,
        max_tokens=gen.max_tokens,
        joint_values=gen.joint_values,
        time_context=gen.time_context,
    )
    rng = np.random.default_rng(gen.seed)
    static, toks, states, phases, cut = codec.encode_timelines(data, rng)
    static = codec.hide_flags(static, rng)
    n = len(toks)
    perm = rng.permutation(n)
    n_val = 0 if private else int(min(max(gen.validation_fraction * n, 10), n // 4))
    val_idx, train_idx = perm[:n_val], perm[n_val:]
    gen.validation_patients_ = np.sort(val_idx)  # positions in the patients table

    def part(idx: np.ndarray) -> Timelines:
        return Timelines(
            static[idx],
            [toks[i] for i in idx],
            [states[i] for i in idx],
            [phases[i] for i in idx],
        )

    objective = TimelineObjective(
        codec,
        part(train_idx),
        part(val_idx),
        token_budget=gen.token_budget,
        perm_prob=float(gen.perm_prob),
    )
    lengths = np.array([len(t) for t in toks])
    info = {
        "n_patients": int(n),
        "n_train_patients": int(len(train_idx)),
        "n_validation_patients": int(n_val),
        "timelines_cut": int(cut),
        "tokens_per_patient_mean": round(float(lengths.mean()), 2),
        "tokens_per_patient_max": int(lengths.max()),
    }
    return codec, objective, info
