from __future__ import annotations

import subprocess
import sys

import healthsynth


def test_import_is_light():
    code = (
        "import sys, healthsynth, healthsynth.data, healthsynth.generators; "
        "print(any(m in sys.modules for m in ('torch', 'transformers', 'sklearn')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_public_api_surface():
    assert sorted(healthsynth.__all__) == sorted(
        [
            "Schema",
            "__version__",
            "evaluate",
            "infer_schema",
            "load_generator",
            "read_table",
            "registry",
        ]
    )
    from healthsynth import data, errors, generators

    assert {"Schema", "infer_schema", "read_table", "write_table", "load_dataset"} <= set(
        data.__all__
    )
    assert issubclass(errors.SchemaValidationError, errors.HealthsynthError)
    assert generators.registry.names() == [
        "bayesian-network",
        "ctgan",
        "gaussian-copula",
        "marginals",
        "prompted-llm",
        "random-oversampling",
        "smote",
        "tabular-lm",
        "timeline-lm",
        "tvae",
    ]
    assert generators.registry.names(kind="timelines") == ["timeline-lm"]
    assert callable(healthsynth.evaluate)
    from healthsynth import evaluate, knowledge, report

    assert {"evaluate", "METRICS", "MetricRecord", "DIMENSIONS"} <= set(evaluate.__all__)
    assert {"Predicate", "Rule", "RuleSet", "load_rules", "icd10cm_rules"} <= set(knowledge.__all__)
    assert {"render_html", "write_report", "scorecard", "scorecard_table"} <= set(report.__all__)
    from healthsynth import llm

    assert {"ChatClient", "ChatRequest", "AuditLog", "is_local_endpoint", "load_prices"} <= set(
        llm.__all__
    )
    from healthsynth import benchmark

    assert {"load_config", "run_benchmark", "packaged_configs", "frontier", "rank_table"} <= set(
        benchmark.__all__
    )


def test_benchmark_import_does_not_pull_the_baseline_libraries():
    code = (
        "import sys, healthsynth.benchmark; "
        "print([m for m in ('sdv', 'ctgan', 'pgmpy', 'imblearn', 'torch') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_llm_import_does_not_pull_the_sdk_or_torch():
    code = (
        "import sys, healthsynth.llm, healthsynth.generators.prompted_llm; "
        "print([m for m in ('openai', 'torch', 'sklearn') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_no_import_cycles_between_our_modules():
    """Lazy imports count too: a cycle that only closes inside a function is still a tangle."""
    from tests.import_graph import cycles, graph

    edges = graph()
    assert len(edges) > 100 and "healthsynth.data._export" in edges
    assert "healthsynth.data._prepared" in edges["healthsynth.data._omop"]
    found = cycles(edges)
    assert not found, "import cycles: " + "; ".join(" <-> ".join(c) for c in found)


def test_the_cycle_check_finds_a_cycle(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("", encoding="utf-8")
    (pkg / "sub" / "__init__.py").write_text("from pkg.sub import _a\n", encoding="utf-8")
    (pkg / "sub" / "_a.py").write_text("from pkg.sub._b import x\n", encoding="utf-8")
    (pkg / "sub" / "_b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import c\n"
        "def f():\n    from . import _a\n",
        encoding="utf-8",
    )
    (pkg / "c.py").write_text("import pkg.sub\n", encoding="utf-8")
    from tests.import_graph import cycles, graph

    edges = graph(tmp_path, "pkg")
    assert edges["pkg.sub._b"] == {"pkg.sub._a"}  # the TYPE_CHECKING import is not an edge
    assert cycles(edges) == [["pkg.sub._a", "pkg.sub._b"]]


def test_the_cli_uses_only_the_public_api_of_other_packages():
    """``healthsynth.cli`` imports other packages' public names, never their private modules."""
    import ast
    from pathlib import Path

    cli = Path(healthsynth.__file__).parent / "cli"
    private = []
    for path in sorted(cli.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("healthsynth."):
                parts = node.module.split(".")
                if parts[1] != "cli" and any(p.startswith("_") for p in parts[1:]):
                    private.append(f"{path.name}: {node.module}")
    assert private == []
