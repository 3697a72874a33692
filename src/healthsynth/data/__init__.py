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
from healthsynth.data._meds_read import MedsData, read_meds
from healthsynth.data._omop_db import OMOP_DOMAINS, OmopData, read_omop
from healthsynth.data._omop_write import write_omop
from healthsynth.data._schema import KINDS, ROLES, SCHEMA_VERSION, Column, Schema, infer_schema
from healthsynth.data._split import train_holdout_split

__all__ = [
    "EVENT_COLUMNS",
    "EXPORT_FORMATS",
    "HEALTH_DATASETS",
    "TIMELINE_DATASETS",
    "KINDS",
    "OMOP_DOMAINS",
    "ROLES",
    "SCHEMA_VERSION",
    "Column",
    "Dataset",
    "EventTable",
    "MedsData",
    "OmopData",
    "Schema",
    "atomic_path",
    "export_dataset",
    "export_dataset_as",
    "infer_schema",
    "list_datasets",
    "load_dataset",
    "load_timelines",
    "read_meds",
    "read_omop",
    "read_table",
    "train_holdout_split",
    "write_omop",
    "write_table",
]
