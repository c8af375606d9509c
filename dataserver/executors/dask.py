"""Dask executor: tasks run on the workers of a dask.distributed scheduler.

This is how a deployment grows past one machine: start a scheduler and workers with xoda
installed and the product cache on a shared file system, and point `XODA_DASK_SCHEDULER`
at the scheduler. Without an address a LocalCluster of `workers` processes is started.
"""
from __future__ import annotations

import logging
import threading
import uuid
from concurrent.futures import Future
from typing import Any

from ..worker import WorkerContext, run_task
from . import failure_result

log = logging.getLogger(__name__)


class DaskExecutor:
    def __init__(self, context: WorkerContext, address: str | None, workers: int):
        from distributed import Client, LocalCluster

        self._context = context
        self._cluster = None
        if address:
            self._client = Client(address, set_as_default=False)
        else:
            self._cluster = LocalCluster(n_workers=max(1, workers), threads_per_worker=1,
                                         processes=True, dashboard_address=None,
                                         silence_logs=logging.WARNING)
            self._client = Client(self._cluster, set_as_default=False)
        self.parallelism = max(1, sum(self._client.nthreads().values()))
        # Dask cancels a task whose future is garbage collected; hold them until done.
        self._pending: set = set()
        self._lock = threading.Lock()

    def submit(self, task: dict[str, Any]) -> "Future[dict[str, Any]]":
        node = task["nodes"][task["target"]]
        result: Future = Future()
        dask_future = self._client.submit(
            run_task, task, self._context.to_dict(), pure=False,
            key=f"xoda-{node['name']}-{task['target'][:12]}-{uuid.uuid4().hex[:8]}")

        def transfer(finished) -> None:
            try:
                result.set_result(finished.result())
            except Exception as exc:  # noqa: BLE001 - KilledWorker, lost connection, ...
                log.error("dask task %s failed: %s", finished.key, exc)
                result.set_result(failure_result(
                    task, f"dask worker failed: {type(exc).__name__}: {exc}"))
            finally:
                with self._lock:
                    self._pending.discard(finished)

        with self._lock:
            self._pending.add(dask_future)
        dask_future.add_done_callback(transfer)
        return result

    def close(self) -> None:
        self._client.close()
        if self._cluster is not None:
            self._cluster.close()
