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
from healthsynth.data._db import default_schema, display_url
from healthsynth.data._export import EXPORT_FORMATS, export_dataset_as
from healthsynth.data._io import neutralise_formulas, read_table, table_format, write_table
from healthsynth.data._meds_read import MedsData, read_meds
from healthsynth.data._names import check_name, is_plain_name
from healthsynth.data._omop_db import OMOP_DOMAINS, OmopData, read_omop
from healthsynth.data._omop_write import write_omop
from healthsynth.data._outputs import (
    add_to_manifest,
    atomic_folder,
    atomic_path,
    check_output_file,
    check_output_folder,
    output_lock,
    protected_files,
    record_inputs,
)
from healthsynth.data._schema import KINDS, ROLES, SCHEMA_VERSION, Column, Schema, infer_schema
from healthsynth.data._split import train_holdout_split

__all__ = [
    "EVENT_COLUMNS",
    "EXPORT_FORMATS",
    "HEALTH_DATASETS",
    "KINDS",
    "OMOP_DOMAINS",
    "ROLES",
    "SCHEMA_VERSION",
    "TIMELINE_DATASETS",
    "Column",
    "Dataset",
    "EventTable",
    "MedsData",
    "OmopData",
    "Schema",
    "add_to_manifest",
    "atomic_folder",
    "atomic_path",
    "check_name",
    "check_output_file",
    "check_output_folder",
    "default_schema",
    "display_url",
    "export_dataset",
    "export_dataset_as",
    "infer_schema",
    "is_plain_name",
    "list_datasets",
    "load_dataset",
    "load_timelines",
    "neutralise_formulas",
    "output_lock",
    "protected_files",
    "read_meds",
    "read_omop",
    "read_table",
    "record_inputs",
    "table_format",
    "train_holdout_split",
    "write_omop",
    "write_table",
]
