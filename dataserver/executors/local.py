"""Local executor: a pool of worker processes, each supervised on its own.

Every pool thread owns one worker process (forked from a forkserver that has already
imported the engine and the plugins' step modules) and hands it one task at a time over a
pipe. Unlike `concurrent.futures.ProcessPoolExecutor`, whose pool breaks for every pending
task when one worker dies, a worker killed by the kernel (out of memory, a signal) fails only
the task it was running; its thread starts a fresh process for the next task. Workers are
recycled after `MAX_TASKS_PER_WORKER` tasks so memory a large step used is given back.
"""
from __future__ import annotations

import logging
import multiprocessing
import signal
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Sequence

from ..worker import WorkerContext, open_store, run_task
from . import failure_result

log = logging.getLogger(__name__)

MAX_TASKS_PER_WORKER = 200


def _worker_loop(connection, context: dict[str, Any]) -> None:
    while True:
        task = connection.recv()
        if task is None:
            return
        try:
            result = run_task(task, context)
        except BaseException as exc:  # noqa: BLE001 - e.g. the store cannot be opened
            result = failure_result(task, f"worker error: {type(exc).__name__}: {exc}")
        connection.send(result)


def _death_reason(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        return f"was killed by {name}"
    return f"exited with code {exitcode}"


class _WorkerProcess:
    def __init__(self, mp, context: dict[str, Any]):
        self.connection, child = mp.Pipe(duplex=True)
        self.process = mp.Process(target=_worker_loop, args=(child, context), daemon=True,
                                  name="xoda-worker")
        self.process.start()
        child.close()
        self.tasks = 0

    def run(self, task: dict[str, Any]) -> dict[str, Any] | None:
        """The task's result, or None if the process died while running it."""
        self.tasks += 1
        try:
            self.connection.send(task)
            return self.connection.recv()
        except (EOFError, BrokenPipeError, ConnectionResetError):
            self.process.join()
            return None

    def stop(self) -> None:
        try:
            self.connection.send(None)
        except (BrokenPipeError, OSError):
            pass
        self.process.join(timeout=10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.connection.close()


class LocalExecutor:
    def __init__(self, context: WorkerContext, workers: int, preload: Sequence[str] = ()):
        self._context = context
        self.parallelism = max(1, int(workers))
        self._mp = multiprocessing.get_context("forkserver")
        self._mp.set_forkserver_preload(["dataserver.worker", *preload])
        self._local = threading.local()
        self._workers: list[_WorkerProcess] = []
        self._workers_lock = threading.Lock()
        self._threads = ThreadPoolExecutor(max_workers=self.parallelism,
                                           thread_name_prefix="xoda-local")

    def submit(self, task: dict[str, Any]) -> "Future[dict[str, Any]]":
        return self._threads.submit(self._run, task)

    def _worker(self) -> _WorkerProcess:
        worker = getattr(self._local, "worker", None)
        if worker is None or worker.tasks >= MAX_TASKS_PER_WORKER or not worker.process.is_alive():
            if worker is not None:
                self._retire(worker)
            worker = _WorkerProcess(self._mp, self._context.to_dict())
            with self._workers_lock:
                self._workers.append(worker)
            self._local.worker = worker
        return worker

    def _retire(self, worker: _WorkerProcess) -> None:
        worker.stop()
        with self._workers_lock:
            self._workers.remove(worker)
        self._local.worker = None

    def _run(self, task: dict[str, Any]) -> dict[str, Any]:
        worker = self._worker()
        result = worker.run(task)
        if result is not None:
            return result
        reason = _death_reason(worker.process.exitcode)
        self._retire(worker)
        open_store(self._context.cache_dir, self._context.cache_size_bytes).discard_staging(task["target"])
        log.error("worker process running %s %s", task["target"], reason)
        return failure_result(task, f"worker process {reason} before finishing; "
                                    "nothing was stored for this step")

    def close(self) -> None:
        self._threads.shutdown(wait=True, cancel_futures=True)
        with self._workers_lock:
            workers, self._workers = self._workers, []
        for worker in workers:
            worker.stop()
