"""Data-parallel training of the language-model generators on Ray Train.

:func:`fit` trains ``tabular-lm`` or ``timeline-lm`` on ``workers`` Ray Train workers
(``TorchTrainer``, PyTorch DDP over gloo on CPU): every worker runs the generator's
own ``fit`` under the :class:`~healthsynth.scale._ddp.DataParallel` strategy (the engine's one
training loop, so the same validation, early stopping, time budget and privacy-aware stop),
worker 0 saves the fitted model as a model folder and reports it as the run's checkpoint, and
the driver loads that folder back: the result is an ordinary fitted generator, saved like any
other. Nothing is written outside a temporary folder until the caller saves the model.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from healthsynth.errors import EngineError, ParameterError
from healthsynth.scale._ray import check_workers

__all__ = ["TRAINABLE", "check_gpus", "fit"]

#: the generators trained through the shared LM engine's loop
TRAINABLE = ("tabular-lm", "timeline-lm")


def _generator_class(name: str) -> type:
    from healthsynth.generators import registry

    try:
        return registry.get(name)  # type: ignore[no-any-return]
    except Exception:  # noqa: BLE001 - older layouts keep timelines in their own registry
        from healthsynth.generators._registry import timeline_registry

        return timeline_registry.get(name)  # type: ignore[no-any-return]


def _train_loop(config: dict[str, Any]) -> None:
    """On each Ray Train worker: fit under DDP; worker 0 reports the model folder."""
    import ray
    import ray.train

    from healthsynth.generators._lm._fit import training_strategy
    from healthsynth.scale._ddp import DataParallel

    name, params, data, fit_kwargs = ray.get(config["payload"])
    gen = _generator_class(name)(**params)
    device = None
    if config.get("gpu"):
        import ray.train.torch

        device = ray.train.torch.get_device()
    strategy = DataParallel(seed=int(params.get("seed") or 0), device=device)
    with training_strategy(strategy):
        gen.fit(data, **fit_kwargs)
    record = gen.training_record_
    metrics = {
        "best_val_nll_per_token": float(record["best_val_nll_per_token"]),
        "epochs_run": int(record["epochs_run"]),
        "rank": strategy.rank,
    }
    if strategy.rank == 0:
        with tempfile.TemporaryDirectory(prefix="healthsynth-fit-") as tmp:
            folder = gen.save(Path(tmp) / "model")
            ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(str(folder)))
    else:
        ray.train.report(metrics)


def fit(
    generator: Any,
    data: Any,
    *,
    workers: int = 2,
    address: str | None = None,
    gpus_per_worker: float = 0.0,
    **fit_kwargs: Any,
) -> Any:
    """Fit ``generator`` (unfitted, its settings as given) on Ray Train workers; return it fitted.

    Parameters
    ----------
    generator
        A ``tabular-lm`` or ``timeline-lm`` generator with its settings (it is not changed:
        a new, fitted one of the same settings is returned).
    data
        What ``generator.fit`` takes (a DataFrame, or a Dataset of patients).
    workers
        Ray Train workers, one CPU each (and ``gpus_per_worker`` of a GPU).
    address
        The Ray cluster to join (see :func:`healthsynth.scale.sample`).
    gpus_per_worker
        0 (the default): the workers train on CPUs (gloo). 1: each worker trains on a GPU of
        its own (NCCL). A share below 1 puts several workers on one GPU, which NCCL cannot
        serve, so they exchange gradients over gloo instead.
    **fit_kwargs
        Passed to ``generator.fit`` (``schema``, ``rules``, ``code_map`` …).

    Returns
    -------
    Generator
        The fitted generator, loaded from worker 0's model folder; its training record says
        ``engine: ray`` and how many workers trained it.

    Raises
    ------
    ParameterError
        A generator that does not train through the LM engine, or a bad ``workers``.
    MissingExtraError
        Without Ray (the ``ray`` extra).
    EngineError
        An unreachable cluster, or a training run that failed on the workers.
    """
    from healthsynth.scale._ray import ray_session

    name = getattr(generator, "name", type(generator).__name__)
    if name not in TRAINABLE:
        raise ParameterError(
            f"--engine ray trains the language-model generators ({', '.join(TRAINABLE)}); fit "
            f"'{name}' with --engine local"
        )
    check_workers(workers)
    gpus = check_gpus(gpus_per_worker)
    started = time.perf_counter()
    with ray_session(address=address, workers=workers, purpose="fit --engine ray") as ray:
        from ray.train import FailureConfig, RunConfig, ScalingConfig
        from ray.train.torch import TorchConfig, TorchTrainer

        payload = ray.put((name, generator.get_params(), data, dict(fit_kwargs)))
        storage = Path(tempfile.mkdtemp(prefix="healthsynth-ray-train-"))
        try:
            trainer = TorchTrainer(
                _train_loop,
                train_loop_config={"payload": payload, "gpu": gpus > 0},
                scaling_config=ScalingConfig(
                    num_workers=workers,
                    use_gpu=gpus > 0,
                    resources_per_worker={"CPU": 1, **({"GPU": gpus} if gpus else {})},
                ),
                torch_config=TorchConfig(backend="gloo" if gpus < 1 else "nccl"),
                run_config=RunConfig(
                    name="healthsynth-fit",
                    storage_path=str(storage),
                    failure_config=FailureConfig(max_failures=0),
                ),
            )
            try:
                result = trainer.fit()
            except Exception as e:  # Ray Train raises its own error types
                raise EngineError(_training_failure(e)) from None
            error = getattr(result, "error", None)
            if error is not None:
                raise EngineError(_training_failure(error))
            if result.checkpoint is None:
                raise EngineError(
                    "data-parallel training ended without a model from worker 0; see the Ray logs"
                )
            fitted = _load(result.checkpoint)
        finally:
            shutil.rmtree(storage, ignore_errors=True)
    fitted.training_record_ = {
        **fitted.training_record_,
        "engine": "ray",
        "workers": workers,
        "gpus_per_worker": gpus,
        "ray_fit_seconds": round(time.perf_counter() - started, 3),
    }
    return fitted


def check_gpus(value: Any, *, name: str = "gpus_per_worker") -> float:
    """``value`` as a share of one GPU in [0, 1] (DDP trains one rank per GPU at most)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not 0 <= float(value) <= 1:
        raise ParameterError(
            f"{name} must be a number from 0 to 1 (a share of one GPU); got {value!r}"
        )
    return float(value)


def _load(checkpoint: Any) -> Any:
    from healthsynth.generators import load_generator

    with checkpoint.as_directory() as folder:
        return load_generator(folder)


def _training_failure(e: BaseException) -> str:
    from healthsynth.errors import HealthsynthError

    for cause in _causes(e):
        if isinstance(cause, HealthsynthError):
            return f"data-parallel training failed on a worker: {cause}"
    if any(_is_worker_death(cause) for cause in _causes(e)):
        return (
            "data-parallel training failed: a Ray Train worker died mid-fit (its process was "
            "killed or crashed, often for lack of memory) and nothing was saved; fit again, "
            "with fewer workers or --engine local"
        )
    text = str(e).strip().splitlines()
    first = next((t for t in text if t.strip()), type(e).__name__)
    return f"data-parallel training failed on the Ray workers ({first.strip()[:300]})"


def _causes(e: BaseException) -> list[BaseException]:
    """``e``, its causes, and the per-worker errors Ray Train attaches (each once)."""
    seen: list[BaseException] = []
    todo = [e]
    while todo:
        cause = todo.pop()
        if cause is None or any(cause is s for s in seen) or len(seen) > 50:
            continue
        seen.append(cause)
        todo.append(cause.__cause__ or getattr(cause, "cause", None))
        failures = getattr(cause, "worker_failures", None)
        if isinstance(failures, Mapping):
            todo.extend(v for v in failures.values() if isinstance(v, BaseException))
    return seen


def _is_worker_death(e: BaseException) -> bool:
    try:
        from ray.exceptions import NodeDiedError, RayActorError, WorkerCrashedError
    except ImportError:  # pragma: no cover - Ray is there when this runs
        return False
    if isinstance(e, (RayActorError, WorkerCrashedError, NodeDiedError)):
        return True
    text = str(e)
    return "died" in text and "worker" in text.lower()


def compare(generator: Any, data: Any, *, workers: int = 2, **fit_kwargs: Any) -> Mapping[str, Any]:
    """Fit ``generator``'s settings in one process and on ``workers`` Ray workers (benchmarks).

    Returns both best validation losses, their relative gap and both training records'
    headline figures.
    """
    cls = type(generator)
    t0 = time.perf_counter()
    local = cls(**generator.get_params()).fit(data, **fit_kwargs)
    local_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    ray_gen = fit(cls(**generator.get_params()), data, workers=workers, **fit_kwargs)
    ray_s = time.perf_counter() - t0
    a = float(local.training_record_["best_val_nll_per_token"])
    b = float(ray_gen.training_record_["best_val_nll_per_token"])

    def headline(record: Mapping[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in record.items() if isinstance(v, (bool, int, float, str))}

    return {
        "local": {**headline(local.training_record_), "wall_seconds": round(local_s, 1)},
        "ray": {**headline(ray_gen.training_record_), "wall_seconds": round(ray_s, 1)},
        "relative_gap": (b - a) / a,
    }
