"""Tables, their schema, readers and writers, and real example datasets."""

from healthsynth.data._dataset import EVENT_COLUMNS, Dataset, EventTable
from healthsynth.data._datasets import (
    HEALTH_DATASETS,
    TIMELINE_DATASETS,
    export_dataset,
    list_datasets,
    load_dataset,
    load_timelines,
)
from healthsynth.data._export import EXPORT_FORMATS, export_dataset_as
from healthsynth.data._io import atomic_path, read_table, write_table
from healthsynth.data._names import check_name, is_plain_name
from healthsynth.data._schema import KINDS, ROLES, SCHEMA_VERSION, Column, Schema, infer_schema
from healthsynth.data._split import train_holdout_split

__all__ = [
    "EVENT_COLUMNS",
    "EXPORT_FORMATS",
    "HEALTH_DATASETS",
    "TIMELINE_DATASETS",
    "KINDS",
    "ROLES",
    "SCHEMA_VERSION",
    "Column",
    "Dataset",
    "EventTable",
    "Schema",
    "atomic_path",
    "check_name",
    "export_dataset",
    "export_dataset_as",
    "infer_schema",
    "is_plain_name",
    "list_datasets",
    "load_dataset",
    "load_timelines",
    "read_table",
    "train_holdout_split",
    "write_table",
]
