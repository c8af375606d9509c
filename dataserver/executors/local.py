"""Local executor: each task runs in its own short-lived process.

Processes come from a forkserver that has already imported the engine and the plugins'
step modules, so starting one costs milliseconds, not an interpreter start. One process per
task (rather than a long-lived pool) means a worker killed by the kernel (out of memory,
a signal) fails only its own task: the pool is never "broken" for the other units, and
memory a step used is returned to the system when it ends.
"""
from __future__ import annotations

import logging
import multiprocessing
import signal
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Sequence

from ..worker import WorkerContext, open_store, run_task
from . import failure_result

log = logging.getLogger(__name__)


def _child_main(task: dict[str, Any], context: dict[str, Any], sender) -> None:
    try:
        result = run_task(task, context)
    except BaseException as exc:  # noqa: BLE001 - report anything, including store errors
        result = failure_result(task, f"worker error: {type(exc).__name__}: {exc}")
    sender.send(result)
    sender.close()


def _death_reason(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        return f"was killed by {name}"
    return f"exited with code {exitcode}"


class LocalExecutor:
    def __init__(self, context: WorkerContext, workers: int, preload: Sequence[str] = ()):
        self._context = context
        self.parallelism = max(1, int(workers))
        self._mp = multiprocessing.get_context("forkserver")
        self._mp.set_forkserver_preload(["dataserver.worker", *preload])
        self._threads = ThreadPoolExecutor(max_workers=self.parallelism,
                                           thread_name_prefix="xoda-local")

    def submit(self, task: dict[str, Any]) -> "Future[dict[str, Any]]":
        return self._threads.submit(self._supervise, task)

    def _supervise(self, task: dict[str, Any]) -> dict[str, Any]:
        receiver, sender = self._mp.Pipe(duplex=False)
        process = self._mp.Process(target=_child_main, daemon=True,
                                   args=(task, self._context.to_dict(), sender))
        process.start()
        sender.close()
        result = None
        try:
            result = receiver.recv()
        except EOFError:
            pass
        finally:
            receiver.close()
            process.join()
        if result is not None:
            return result
        reason = _death_reason(process.exitcode)
        store = open_store(self._context.cache_dir, self._context.cache_size_bytes)
        store.discard_staging(task["target"])
        log.error("worker process for %s %s", task["target"], reason)
        return failure_result(task, f"worker process {reason} before finishing; "
                                    "nothing was stored for this step")

    def close(self) -> None:
        self._threads.shutdown(wait=True, cancel_futures=True)
