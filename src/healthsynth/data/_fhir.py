"""FHIR R4 Bundles from a prepared dataset, built with ``fhir.resources`` (its R4B models).

One JSON file per patient, ``Patient-<id>.json``, holding a Bundle of type ``collection``:

* a **Patient** (identifier = the dataset's key, ``gender``, ``birthDate`` as a year only since
  it is estimated from the age at the index date, ``deceasedDateTime`` at the end of follow-up
  for patients who died);
* a **Condition** per condition event (``code`` with an ICD-10-CM coding where mapped, the
  item as text, ``onsetDateTime``);
* an **Observation** per measurement (``status`` final, ``code`` with a LOINC coding where
  mapped, ``valueQuantity`` with the UCUM unit where known, ``effectiveDateTime``).

Resources refer to their Patient by its ``urn:uuid:`` full URL. IDs are UUIDs derived from the
patient and the event's position, so the same export gives the same files. R4B is the R4
technical correction; these four resources are the same in R4 and R4B.
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from healthsynth.data._prepared import CONDITION, Prepared
from healthsynth.errors import DataError

__all__ = ["FHIR_SYSTEMS", "write_fhir"]

#: code system URIs of the vocabularies a code map may use
FHIR_SYSTEMS = {
    "ICD10CM": "http://hl7.org/fhir/sid/icd-10-cm",
    "LOINC": "http://loinc.org",
}
_UCUM = "http://unitsofmeasure.org"
_FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://healthsynth.invalid/fhir-export")


def write_fhir(prepared: Prepared, folder: Path) -> None:
    """Write one ``Patient-<id>.json`` Bundle per patient into ``folder``.

    Each Bundle is validated by ``fhir.resources`` (every resource against its R4B model)
    before it is written; the file holds exactly the validated content.
    """
    from fhir.resources.R4B.bundle import Bundle

    p, ev = prepared.patients, prepared.events
    fids = p["source_id"].map(_fhir_id)
    if fids.duplicated().any():
        raise DataError(
            f"two patients share the FHIR id {fids[fids.duplicated()].iloc[0]!r} (their IDs "
            "read the same as text); give every patient a distinct ID"
        )
    by_person = {pid: grp for pid, grp in ev.groupby("person_id", sort=False)}
    for row in p.itertuples(index=False):
        fid = _fhir_id(row.source_id)
        patient_url = f"urn:uuid:{_uuid(f'{fid}/Patient')}"
        patient: dict[str, Any] = {
            "resourceType": "Patient",
            "id": fid,
            "identifier": [{"value": row.source_id}],
        }
        if row.sex is not None:
            patient["gender"] = row.sex if row.sex in ("female", "male") else "unknown"
        if not pd.isna(row.birth):
            patient["birthDate"] = f"{row.birth.year:04d}"
        if row.died:
            patient["deceasedDateTime"] = _datetime(row.death_date)
        entries = [{"fullUrl": patient_url, "resource": patient}]
        subject = {"reference": patient_url}
        events = by_person.get(row.person_id)
        rows = events.itertuples(index=False) if events is not None else ()
        for n, e in enumerate(rows):
            rid = _uuid(f"{fid}/{n}")
            if e.domain == CONDITION:
                resource: dict[str, Any] = {
                    "resourceType": "Condition",
                    "id": rid,
                    "code": _concept(e),
                    "subject": subject,
                    "onsetDateTime": _datetime(e.when),
                }
            else:
                resource = {
                    "resourceType": "Observation",
                    "id": rid,
                    "status": "final",
                    "code": _concept(e),
                    "subject": subject,
                    "effectiveDateTime": _datetime(e.when),
                }
                if not np.isnan(e.value):
                    quantity: dict[str, Any] = {"value": float(e.value)}
                    if e.unit is not None:
                        quantity |= {"unit": e.unit, "system": _UCUM, "code": e.unit}
                    resource["valueQuantity"] = quantity
            entries.append({"fullUrl": f"urn:uuid:{rid}", "resource": resource})
        bundle = {"resourceType": "Bundle", "id": fid, "type": "collection", "entry": entries}
        Bundle.model_validate(bundle)
        (folder / f"Patient-{fid}.json").write_text(
            json.dumps(bundle, ensure_ascii=False), encoding="utf-8"
        )


def _concept(e: Any) -> dict[str, Any]:
    """A CodeableConcept: the mapped code as a coding (where there is one), the item as text."""
    concept: dict[str, Any] = {"text": str(e.item)}
    if e.code is not None:
        coding = {"code": str(e.code)}
        if e.vocabulary in FHIR_SYSTEMS:
            coding["system"] = FHIR_SYSTEMS[e.vocabulary]
        if e.description:
            coding["display"] = str(e.description)
        concept["coding"] = [coding]
    return concept


def _fhir_id(source_id: str) -> str:
    """The key itself where it is a valid FHIR id, else a UUID derived from it."""
    return source_id if _FHIR_ID.fullmatch(source_id) else str(_uuid(f"key/{source_id}"))


def _uuid(name: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, name))


def _datetime(ts: pd.Timestamp) -> str:
    """A FHIR dateTime: the date alone at midnight, else the time in UTC."""
    ts = pd.Timestamp(ts)
    day = f"{ts.year:04d}-{ts.month:02d}-{ts.day:02d}"
    if ts == ts.normalize():
        return day
    return f"{day}T{ts.hour:02d}:{ts.minute:02d}:{ts.second:02d}+00:00"
