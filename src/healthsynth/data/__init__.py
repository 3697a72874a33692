"""Tables, their schema, readers and writers, and real example datasets."""

from healthsynth.data._datasets import (
    HEALTH_DATASETS,
    export_dataset,
    list_datasets,
    load_dataset,
)
from healthsynth.data._io import atomic_path, read_table, write_table
from healthsynth.data._schema import KINDS, ROLES, SCHEMA_VERSION, Column, Schema, infer_schema
from healthsynth.data._split import train_holdout_split

__all__ = [
    "HEALTH_DATASETS",
    "KINDS",
    "ROLES",
    "SCHEMA_VERSION",
    "Column",
    "Schema",
    "atomic_path",
    "export_dataset",
    "infer_schema",
    "list_datasets",
    "load_dataset",
    "read_table",
    "train_holdout_split",
    "write_table",
]
