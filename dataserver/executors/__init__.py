"""Executors run worker tasks (`dataserver.worker.run_task`) somewhere and hand back futures.

All three share one small interface: `submit(task) -> concurrent.futures.Future` whose result
is the worker's result dict (a failure is a result too, never an exception), `parallelism`,
and `close()`. The engine does the scheduling; an executor only decides where a task runs.
"""
from __future__ import annotations

from typing import Any, Protocol, Sequence
from concurrent.futures import Future

from ..settings import Settings
from ..worker import WorkerContext


class Executor(Protocol):
    parallelism: int

    def submit(self, task: dict[str, Any]) -> "Future[dict[str, Any]]": ...

    def close(self) -> None: ...


def failure_result(task: dict[str, Any], message: str) -> dict[str, Any]:
    """The result of a task whose worker died or could not be reached."""
    import time
    node = task["nodes"][task["target"]]
    return {"target": task["target"], "state": "failed", "events": [{
        "key": task["target"], "unit": node.get("unit"), "step": node["name"],
        "version": node["version"], "state": "failed", "message": message,
        "time": time.time(), "elapsed": None}]}


def create_executor(settings: Settings, context: WorkerContext,
                    preload: Sequence[str] = ()) -> Executor:
    """The executor named by the `executor` setting."""
    kind = settings.executor
    if kind == "local":
        from .local import LocalExecutor
        return LocalExecutor(context, settings.worker_count, preload=preload)
    if kind == "dask":
        from .dask import DaskExecutor
        return DaskExecutor(context, settings.dask_scheduler or None, settings.worker_count)
    if kind == "docker":
        from .docker import DockerExecutor
        return DockerExecutor(context, image=settings.docker_image,
                              code_dir=settings.docker_code_dir or None,
                              workers=settings.worker_count, state_dir=settings.data_path)
    raise ValueError(f"setting XODA_EXECUTOR: unknown executor {kind!r} (local, dask or docker)")
