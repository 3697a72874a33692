"""Clinical notes grounded in synthetic patients, and their evaluation.

:func:`write_notes` asks any OpenAI-compatible chat endpoint for one note per patient of a
synthetic table or timeline folder, written from that patient's record only, through the same
:class:`~healthsynth.llm.ChatClient` (PHI gate, budget, cache, audit log) as ``prompted-llm``.
:func:`evaluate_notes` checks each note against its patient (age, sex, conditions, lab values),
scans it for identifiers, and measures the notes' diversity and length, as
:class:`~healthsynth.evaluate.MetricRecord` records. :mod:`healthsynth.notes.testing` scripts
notes for the local test server.
"""

from healthsynth.notes._facts import check_note, extract_facts, patient_facts
from healthsynth.notes._lexicon import Concept, Lexicon, load_lexicon
from healthsynth.notes._patients import Patient, PatientSource, provenance, read_patients
from healthsynth.notes._phi import PHI_KINDS, PHIFinding, scan_phi
from healthsynth.notes._prompts import KINDS, render_prompt
from healthsynth.notes._write import DEFAULT_AUDIT_LOG, write_notes
from healthsynth.notes.evaluate import NOTE_METRICS, check_notes, evaluate_notes, load_notes

__all__ = [
    "DEFAULT_AUDIT_LOG",
    "KINDS",
    "NOTE_METRICS",
    "PHI_KINDS",
    "Concept",
    "Lexicon",
    "PHIFinding",
    "Patient",
    "PatientSource",
    "check_note",
    "check_notes",
    "evaluate_notes",
    "extract_facts",
    "load_lexicon",
    "load_notes",
    "patient_facts",
    "provenance",
    "read_patients",
    "render_prompt",
    "scan_phi",
    "write_notes",
]
