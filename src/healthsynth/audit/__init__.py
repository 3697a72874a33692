"""Privacy audits that re-fit a generator: what it does with a one-of-a-kind record.

:func:`canary_audit` inserts unique synthetic *canary* records into the training rows,
re-fits the generator with its own settings, and measures each canary's *exposure* (its rank
by the model's likelihood among records like it; Carlini et al. 2019, "The Secret Sharer") and
whether sampling reproduces it, next to the same figures for the audited model, which never
saw the canaries. ``docs/privacy.md`` says how to read them.
"""

from healthsynth.audit._canaries import INFO, canary_audit
from healthsynth.audit._draw import draw_records
from healthsynth.audit._exposure import CHANCE_EXPOSURE, exposure
from healthsynth.audit._report import audit_result

__all__ = [
    "CHANCE_EXPOSURE",
    "INFO",
    "audit_result",
    "canary_audit",
    "draw_records",
    "exposure",
]
