"""Runs queued jobs in the background of every dispatcher process.

Each process (each gunicorn worker) has one `JobRunner` with `job_threads` threads. A thread
claims a job in the shared job store (an atomic conditional UPDATE, so one job runs in one
process), runs it through the engine and records the outcome. A submission wakes the runner of
the process that received it; the others look for work every `POLL_S` seconds.

Liveness: each runner holds an exclusive `flock` on its own file under `<jobs>/runners/`
for as long as its process lives; the kernel drops it when the process dies, however it
dies. A job whose claimant's lock can be taken belongs to a dead process and is claimed
again at once, so a server killed mid-job resumes the job when it starts again; the units
finished before the kill come back from the product cache.
"""
from __future__ import annotations

import fcntl
import logging
import os
import threading
import uuid
from pathlib import Path
from typing import Callable

from .jobstore import Job, JobStore

log = logging.getLogger(__name__)

POLL_S = 1.0


class JobRunner:
    def __init__(self, store: JobStore, execute: Callable[[Job, str], None], threads: int,
                 runners_dir: Path):
        self.store = store
        self._execute = execute
        self._threads_wanted = max(1, int(threads))
        self._runners_dir = Path(runners_dir)
        self._runners_dir.mkdir(parents=True, exist_ok=True)
        self.claimant = ""
        self._lock_handle = None
        self._wake = threading.Condition()
        self._pending_wakeups = 0
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._pid = 0

    # ---- life cycle ----------------------------------------------------------------------
    def ensure_started(self) -> None:
        """Start the threads in this process (again after a fork, e.g. gunicorn --preload)."""
        if self._pid == os.getpid() and self._threads:
            return
        self._pid = os.getpid()
        self.claimant = f"{os.uname().nodename}-{os.getpid()}-{uuid.uuid4().hex[:12]}"
        # Locked before it gets its name: another process scanning the lock files must never
        # find this one unlocked, take this process for dead and remove it.
        staged = self._runners_dir / f".{self.claimant}.staged"
        self._lock_handle = open(staged, "a")
        fcntl.flock(self._lock_handle, fcntl.LOCK_EX)
        os.replace(staged, self._lock_path(self.claimant))
        self._stopping.clear()
        self._threads = [threading.Thread(target=self._loop, name=f"xoda-job-{i}", daemon=True)
                         for i in range(self._threads_wanted)]
        for thread in self._threads:
            thread.start()
        self._remove_dead_lock_files()
        log.info("job runner %s started with %d thread(s)", self.claimant, len(self._threads))

    def stop(self, timeout: float = 30.0) -> None:
        self._stopping.set()
        with self._wake:
            self._wake.notify_all()
        for thread in self._threads:
            thread.join(timeout)
        self._threads = []
        if self._lock_handle is not None and self._pid == os.getpid():
            self._lock_path(self.claimant).unlink(missing_ok=True)
            self._lock_handle.close()
            self._lock_handle = None

    def wake(self) -> None:
        """Look for work now (a job was just queued by this process)."""
        with self._wake:
            self._pending_wakeups += 1
            self._wake.notify()

    # ---- liveness ------------------------------------------------------------------------
    def _lock_path(self, claimant: str) -> Path:
        return self._runners_dir / f"{claimant}.lock"

    def alive(self, claimant: str) -> bool:
        """Whether the process that made `claimant` still runs."""
        if claimant == self.claimant:
            return True
        path = self._lock_path(claimant)
        try:
            handle = open(path, "r")
        except FileNotFoundError:
            return False
        with handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            # Nobody holds it: its process is gone. Remove the file while we hold the lock.
            path.unlink(missing_ok=True)
            fcntl.flock(handle, fcntl.LOCK_UN)
            return False

    def _remove_dead_lock_files(self) -> None:
        for path in self._runners_dir.glob("*.lock"):
            self.alive(path.stem)

    # ---- work ----------------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                job = self.store.claim(self.claimant, self.alive)
            except Exception:  # noqa: BLE001 - a store hiccup must not kill the runner
                log.exception("could not look for queued jobs")
                job = None
            if job is not None:
                log.info("running job %s (%s/%s), run %d", job.id, job.instrument,
                         job.product, job.run)
                try:
                    self._execute(job, self.claimant)
                except Exception:  # noqa: BLE001 - execute records failures itself
                    log.exception("job %s could not be run", job.id)
                continue
            with self._wake:
                if self._pending_wakeups == 0 and not self._stopping.is_set():
                    self._wake.wait(POLL_S)
                self._pending_wakeups = max(0, self._pending_wakeups - 1)
