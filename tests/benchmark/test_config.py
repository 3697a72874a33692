"""Benchmark configs: every bad input the issue lists gives one clear sentence."""

from __future__ import annotations

import json
import textwrap

import pytest

from healthsynth.benchmark import load_config, packaged_configs, run_benchmark
from healthsynth.errors import DataError, DataFileError
from tests.helpers import real


def write(tmp_path, text: str, name: str = "bench.yaml"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text), encoding="utf-8")
    return p


GOOD = textwrap.dedent(
    """\
    datasets:
      - {name: pima, source: MASS/Pima.tr, target: type}
    generators: [marginals]
    train_sizes: [50, all]
    seeds: [0]
"""
)


def test_a_good_config_reads_with_defaults(tmp_path):
    cfg = load_config(write(tmp_path, GOOD))
    assert cfg.name == "bench" and cfg.experiment == "generators"
    assert [m.name for m in cfg.methods] == ["marginals"]
    assert cfg.train_sizes == (50, "all") and cfg.seeds == (0,)
    assert cfg.datasets[0].holdout == 0.2 and cfg.datasets[0].target == "type"


def test_packaged_configs_all_read():
    shipped = packaged_configs()
    assert {"default", "class-imbalance", "health-equity", "data-efficiency", "dp"} <= set(shipped)
    for name in shipped:
        cfg = load_config(name)
        assert len(cfg.datasets) >= 3, name
    assert load_config("default").time_budget_per_cell_s > 0
    # the ε-utility curve: the same generator with and without differential privacy
    eps = [m.params.get("dp_epsilon") for m in load_config("dp").methods]
    assert eps == [None, 8, 3, 1]


def test_unknown_generator_lists_the_valid_ones(tmp_path):
    p = write(tmp_path, GOOD.replace("[marginals]", "[marginals, gpt-17]"))
    with pytest.raises(
        DataFileError, match=r"generator 'gpt-17' is not known; known generators: .*tabular-lm"
    ):
        load_config(p)


def test_builtin_methods_belong_to_their_experiment(tmp_path):
    p = write(tmp_path, GOOD.replace("[marginals]", "[none, marginals]"))
    with pytest.raises(DataFileError, match="generator 'none' is not known"):
        load_config(p)
    cfg = load_config(
        write(
            tmp_path,
            "experiment: class-imbalance\n"
            + GOOD.replace("[marginals]", "[none, class-weights, marginals]"),
        )
    )
    assert [m.builtin for m in cfg.methods] == [True, True, False]


def test_unknown_dataset_lists_the_valid_ones(tmp_path):
    p = write(
        tmp_path, GOOD.replace("{name: pima, source: MASS/Pima.tr, target: type}", "{name: mimic4}")
    )
    with pytest.raises(
        DataFileError, match=r"dataset 'mimic4' is not a known dataset .*survival/nafld1"
    ):
        load_config(p)


def test_a_curated_dataset_can_be_named_directly(tmp_path):
    p = write(
        tmp_path,
        GOOD.replace(
            "{name: pima, source: MASS/Pima.tr, target: type}",
            "{name: survival/pbc, target: status}",
        ),
    )
    d = load_config(p).datasets[0]
    assert d.name == "pbc" and d.source == "survival/pbc"


def test_malformed_yaml_names_the_line(tmp_path):
    p = write(
        tmp_path, "datasets:\n  - {name: pima, source: MASS/Pima.tr\ngenerators: [marginals]\n"
    )
    with pytest.raises(DataFileError, match=r"is not valid YAML at line 3"):
        load_config(p)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- a\n- b\n", "must be a mapping"),
        (GOOD + "epochs: 3\n", "unknown key 'epochs'"),
        (
            GOOD.replace("[50, all]", "[1, all]"),
            "'train_sizes' must be a whole number >= 2 or 'all'",
        ),
        (GOOD.replace("seeds: [0]", "seeds: []"), "'seeds' must be a non-empty list"),
        (
            GOOD.replace("[marginals]", "[{name: marginals, params: {epochs: 3}}]"),
            "generator 'marginals' has no setting 'epochs'",
        ),
        (
            GOOD.replace("[marginals]", "[marginals, marginals]"),
            "generator 'marginals' is listed twice",
        ),
        (GOOD + "metrics: [tstr, magic]\n", "metric 'magic' is not known"),
        (GOOD + "experiment: vibes\n", "experiment 'vibes' is not known"),
        (
            GOOD.replace("target: type}", "target: type, holdout: 1.5}"),
            "'holdout' must be between 0 and 1",
        ),
        (
            GOOD.replace("source: MASS/Pima.tr,", "source: MASS/Pima.tr, path: x.csv,"),
            "has both 'source' and 'path'",
        ),
        (
            GOOD + "time_budget_per_cell_s: -1\n",
            "'time_budget_per_cell_s' must be a positive number",
        ),
    ],
)
def test_bad_entries_get_one_sentence(tmp_path, text, message):
    with pytest.raises(DataFileError) as e:
        load_config(write(tmp_path, text))
    assert message in str(e.value)
    assert "\n" not in str(e.value)


def test_missing_config_file_names_the_packaged_ones(tmp_path):
    with pytest.raises(DataFileError, match="does not exist; .*default"):
        load_config(tmp_path / "nope.yaml")


def test_a_folder_named_like_a_packaged_config_does_not_hide_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "dp").mkdir()  # e.g. the output folder of an earlier 'benchmark dp -o dp'
    assert load_config("dp").source == str(packaged_configs()["dp"])
    with pytest.raises(DataFileError, match="is not a file"):
        load_config(tmp_path / "dp")  # a path to it is still a folder, not a config


def test_missing_data_file_is_reported_before_any_cell_runs(tmp_path):
    p = write(tmp_path, GOOD.replace("source: MASS/Pima.tr", "path: data/pima.csv"))
    cfg = load_config(p)
    with pytest.raises(DataFileError, match=r"the file '.*data/pima.csv' does not exist"):
        run_benchmark(cfg, tmp_path / "out")
    assert not (tmp_path / "out" / "cells").exists()


def test_a_relative_path_starts_at_the_config_folder(tmp_path):
    (tmp_path / "data").mkdir()
    real("MASS/Pima.tr").to_csv(tmp_path / "data" / "pima.csv", index=False)
    cfg = load_config(write(tmp_path, GOOD.replace("source: MASS/Pima.tr", "path: data/pima.csv")))
    assert cfg.datasets[0].path == str(tmp_path / "data" / "pima.csv")


def test_target_absent_from_the_data_lists_the_columns(tmp_path):
    cfg = load_config(write(tmp_path, GOOD.replace("target: type", "target: outcome")))
    with pytest.raises(
        DataError, match=r"the target column 'outcome' is not in the data; its columns: npreg, glu"
    ):
        run_benchmark(cfg, tmp_path / "out")


def test_sensitive_or_dropped_column_absent_is_named(tmp_path):
    cfg = load_config(
        write(tmp_path, GOOD.replace("target: type", "target: type, drop: [insulin]"))
    )
    with pytest.raises(DataError, match="has no column 'insulin'"):
        run_benchmark(cfg, tmp_path / "out")


def test_a_fixed_holdout_file_is_used_unchanged(tmp_path):
    real("MASS/Pima.te").to_csv(tmp_path / "pima_test.csv", index=False)
    p = write(
        tmp_path,
        """\
        datasets:
          - {name: pima, source: MASS/Pima.tr, holdout: pima_test.csv, target: type}
        generators: [marginals]
        train_sizes: [50, all]
        seeds: [0, 1]
        metrics: [tstr]
        """,
    )
    cfg = load_config(p)
    assert cfg.datasets[0].holdout == str(tmp_path / "pima_test.csv")
    run = run_benchmark(cfg, tmp_path / "out", workers=1)
    assert run.status == {"ok": 4}
    for cell in (tmp_path / "out" / "cells" / "pima" / "marginals").iterdir():
        info = json.loads((cell / "cell.json").read_text())
        # every Pima.tr row can be a training row; every Pima.te row is a holdout row
        assert info["holdout_rows"] == 332
        assert info["train_rows"] == (200 if cell.name.startswith("nall") else 50)
    from healthsynth.benchmark._cells import split_for

    a = split_for(cfg.datasets[0], 50, 0)
    b = split_for(cfg.datasets[0], 50, 1)
    assert a[1].equals(b[1]) and not a[0].equals(b[0])  # same holdout, other training rows


def test_a_holdout_file_with_other_columns_is_refused(tmp_path):
    test = real("MASS/Pima.te")
    test.drop(columns=["bmi"]).to_csv(tmp_path / "narrow.csv", index=False)
    test.assign(extra=1).to_csv(tmp_path / "wide.csv", index=False)
    body = """\
        datasets:
          - {name: pima, source: MASS/Pima.tr, holdout: FILE, target: type}
        generators: [marginals]
        """
    for name, said in (
        ("narrow.csv", "lacks the column 'bmi' that the data has"),
        ("wide.csv", "has the column 'extra' that the data lacks"),
        ("missing.csv", "does not exist; check 'holdout'"),
    ):
        cfg = load_config(write(tmp_path, body.replace("FILE", name)))
        err = DataError if name != "missing.csv" else DataFileError
        with pytest.raises(err, match=f"holdout file '.*{name}' {said}|'.*{name}' {said}"):
            run_benchmark(cfg, tmp_path / "out", workers=1)
        assert not (tmp_path / "out").exists()  # nothing written
    # the dataset's column selection applies to the holdout file too
    from healthsynth.benchmark._config import load_frame, load_holdout

    keep = "columns: [npreg, glu, bp, skin, ped, age, type], target: type}"
    spec = load_config(
        write(tmp_path, body.replace("FILE", "narrow.csv").replace("target: type}", keep))
    ).datasets[0]
    hold = load_holdout(spec, load_frame(spec))
    assert hold is not None and hold.shape == (332, 7)


def test_holdout_must_be_a_share_or_a_path(tmp_path):
    with pytest.raises(DataFileError, match="a fraction between 0 and 1 or the path"):
        load_config(write(tmp_path, GOOD.replace("target: type}", "target: type, holdout: [1]}")))
