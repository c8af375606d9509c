"""Job handles, and waiting for one job or many with backoff and a progress bar.

Polling never hammers the server at a fixed rate. Each poll is a long poll
(`GET /api/v1/jobs/{id}?wait=S&report=false`): the server answers as soon as the job is done
or after S seconds, so completion is seen at once while requests stay rare. S starts at the
server's hint (the larger of `Retry-After` and `poll_after_s`, and at least
`PollPolicy.min_interval_s`), grows by `growth` each time nothing moved, up to
`max_interval_s`, and drops back to the hint when the job progresses. For a batch, the first
unfinished job is long-polled and the others are asked without waiting, once per round.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence, TextIO

from .errors import JobFailed, JobTimeout, XodaError
from .progress import ProgressBar
from .transport import retry_after

if TYPE_CHECKING:
    from .dispatcher import Dispatcher
    from .products import ProductCollection

log = logging.getLogger(__name__)

SERVER_MAX_WAIT_S = 25.0
MAX_FAILED_ROUNDS = 5


@dataclass(frozen=True)
class PollPolicy:
    """How often to ask about running jobs (seconds)."""

    first_wait_s: float = 1.0      # long poll of the submission itself
    min_interval_s: float = 0.5
    max_interval_s: float = 10.0
    growth: float = 1.5

    def __post_init__(self) -> None:
        if not 0 < self.min_interval_s <= self.max_interval_s <= SERVER_MAX_WAIT_S:
            raise ValueError("PollPolicy: need 0 < min_interval_s <= max_interval_s <= 25")
        if self.growth < 1 or self.first_wait_s < 0:
            raise ValueError("PollPolicy: growth must be >= 1 and first_wait_s >= 0")


class Backoff:
    """The next poll interval: the server's hint while the job moves, growing while not."""

    def __init__(self, policy: PollPolicy):
        self.policy = policy
        self.delay: float | None = None

    def next(self, hint: float | None, moved: bool) -> float:
        floor = min(max(hint or 0.0, self.policy.min_interval_s), self.policy.max_interval_s)
        if self.delay is None or moved:
            self.delay = floor
        else:
            self.delay = min(max(self.delay * self.policy.growth, floor), self.policy.max_interval_s)
        return self.delay


class Job:
    """A job on the server: its record (`record`, the JSON the API answers), refreshed by
    `refresh()`, waited for by `wait()`, turned into products by `result()`."""

    def __init__(self, dispatcher: "Dispatcher", record: Mapping[str, Any],
                 hint: float | None = None, *, cached: bool = False):
        self.dispatcher = dispatcher
        self.record: dict[str, Any] = dict(record)
        self.cached = cached        # a finished job read from the local cache
        self._hint = hint

    # ---- the record ----------------------------------------------------------------------
    @property
    def id(self) -> str:
        return self.record["job_id"]

    @property
    def instrument(self) -> str:
        return self.record.get("instrument", "")

    @property
    def product(self) -> str:
        return self.record.get("product", "")

    @property
    def params(self) -> dict[str, Any]:
        """The normalised parameters (defaults filled, times in ISO UTC)."""
        if "params" not in self.record:
            # A handle from `Dispatcher.jobs()` holds the listing's summary, which has none:
            # without them its products would not know their query (and `fit` would fit
            # the default one).
            self.refresh()
        return dict(self.record.get("params") or {})

    @property
    def status(self) -> str:
        return self.record.get("status", "unknown")

    @property
    def progress(self) -> dict[str, Any]:
        return dict(self.record.get("progress") or {})

    @property
    def link(self) -> str | None:
        """The reproducible link of the query (no token in it)."""
        return self.record.get("link")

    @property
    def error(self) -> dict[str, Any] | None:
        self._complete_failed_record()
        return self.record.get("error")

    def failure(self) -> JobFailed:
        """The JobFailed of a failed job, with the server's message, unit and step."""
        self._complete_failed_record()
        return JobFailed.from_job(self.record)

    def _complete_failed_record(self) -> None:
        if self.failed and "error" not in self.record:
            # A handle from `Dispatcher.jobs()` holds the listing's summary, which says that
            # the job failed but not why: without the full record the failure has no message.
            self.refresh()

    @property
    def complete(self) -> bool:
        return self.status in ("done", "failed")

    @property
    def done(self) -> bool:
        return self.status == "done"

    @property
    def failed(self) -> bool:
        return self.status == "failed"

    @property
    def poll_hint(self) -> float | None:
        """Seconds the server asks us to wait before polling again."""
        hints = [h for h in (self._hint, self.record.get("poll_after_s")) if h is not None]
        return max(hints) if hints else None

    def __repr__(self) -> str:
        progress = self.progress
        if progress.get("units_total"):
            where = f", {progress.get('units_done', 0)}/{progress['units_total']} units"
        else:
            where = ""
        return f"<Job {self.id[:12]} {self.instrument}/{self.product}: {self.status}{where}>"

    # ---- talking to the server -----------------------------------------------------------
    def refresh(self, wait: float = 0.0) -> "Job":
        """Ask the server for the job's state (waiting up to `wait` s for it to finish)."""
        if self.cached:
            return self
        params = {"report": "false"}
        if wait > 0:
            params["wait"] = f"{min(wait, SERVER_MAX_WAIT_S):.3f}"
        response = self.dispatcher._transport.request(
            "GET", f"/api/v1/jobs/{self.id}", params=params,
            timeout=self.dispatcher._transport.timeout + wait)
        self.record = self.dispatcher._transport.decode(response)
        self._hint = retry_after(response.headers)
        return self

    @property
    def report(self) -> list[dict[str, Any]]:
        """Per unit and step of the latest run: state (computed, restored, failed), message,
        time. Fetched from the server (or kept in the local cache)."""
        if "report" not in self.record:
            self.record = self.dispatcher._transport.get_json(f"/api/v1/jobs/{self.id}")
        return list(self.record.get("report") or [])

    def wait(self, timeout: float | None = None, progress: bool | TextIO | None = None) -> "Job":
        """Wait until the job is finished; raises JobFailed if it failed, JobTimeout if it is
        still running after `timeout` seconds (it goes on on the server)."""
        wait_all([self], timeout=timeout, progress=progress)
        if self.failed:
            raise self.failure()
        return self

    def result(self, timeout: float | None = None,
               progress: bool | TextIO | None = None) -> "ProductCollection":
        """The products (waiting for them first)."""
        self.wait(timeout=timeout, progress=progress)
        return self.dispatcher._collect(self, timeout=timeout)

    def retry(self) -> "Job":
        """Run a failed job again; its finished units come back from the server's cache."""
        response = self.dispatcher._transport.request("POST", f"/api/v1/jobs/{self.id}/retry")
        self.record = self.dispatcher._transport.decode(response)
        self._hint = retry_after(response.headers)
        return self

    def download_archive(self, path: str | Path) -> Path:
        """Every file of the finished job, with job.json and reproducing scripts, as a tar.gz
        at `path` (a directory gets the server's file name)."""
        self.wait(progress=False)
        target = Path(path)
        if target.is_dir():
            target = target / f"xoda-{self.instrument}-{self.product}-{self.id[:12]}.tar.gz"
        partial = target.with_name(target.name + ".part")
        try:
            with open(partial, "wb") as handle:
                for chunk in self.dispatcher._transport.download(f"/api/v1/jobs/{self.id}/archive"):
                    handle.write(chunk)
        except BaseException:
            partial.unlink(missing_ok=True)      # a download cut short leaves no file behind
            raise
        partial.replace(target)
        return target


def _state(job: Job) -> tuple[Any, ...]:
    progress = job.progress
    return (job.status, progress.get("steps_done"), progress.get("units_done"),
            progress.get("failed"))


def _label(jobs: Sequence[Job]) -> str:
    if len(jobs) == 1:
        return f"{jobs[0].instrument}/{jobs[0].product} {jobs[0].id[:8]}"
    return f"{len(jobs)} jobs"


def wait_all(jobs: Sequence[Job], *, timeout: float | None = None,
             progress: bool | TextIO | None = None) -> None:
    """Poll until every job is finished (done or failed), with one progress bar."""
    if not jobs:
        return
    dispatcher = jobs[0].dispatcher
    stream, enabled = dispatcher._progress_target(progress)
    deadline = None if timeout is None else time.monotonic() + timeout
    backoff = Backoff(dispatcher.poll)
    with ProgressBar(_label(jobs), stream, enabled) as bar:
        bar.update([j.record for j in jobs])
        delay = backoff.next(max((j.poll_hint or 0.0) for j in jobs), moved=True)
        failed_rounds = 0
        while True:
            pending = [j for j in jobs if not j.complete]
            if not pending:
                return
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise JobTimeout(pending[0].id, f"job {pending[0].id} is still {pending[0].status} "
                                 f"after {timeout:g} s; it goes on on the server: "
                                 f"Dispatcher.job({pending[0].id!r}) picks it up again")
            interval = delay if remaining is None else min(delay, remaining)
            started = time.monotonic()
            before = [_state(j) for j in pending]
            try:
                for index, job in enumerate(pending):
                    job.refresh(wait=interval if index == 0 else 0.0)
                failed_rounds = 0
            except XodaError as exc:
                # Client errors are final; a server that is down or restarting gets a few
                # more rounds (each already retried by the transport).
                failed_rounds += 1
                if (exc.status is not None and exc.status < 500) or failed_rounds > MAX_FAILED_ROUNDS:
                    raise
                log.warning("polling: %s; trying again", exc.message)
            bar.update([j.record for j in jobs])
            moved = before != [_state(j) for j in pending]
            hint = max((j.poll_hint or 0.0) for j in pending)
            delay = backoff.next(hint, moved)
            if all(j.complete for j in jobs):
                return
            # A server that answers before `interval` (an old one, or one job of a batch
            # finishing) must not turn the loop into a busy poll.
            rest = interval - (time.monotonic() - started)
            if deadline is not None:
                rest = min(rest, deadline - time.monotonic())
            if rest > 0:
                time.sleep(rest)


def gather(jobs: Iterable[Job], *, timeout: float | None = None,
           progress: bool | TextIO | None = None,
           return_exceptions: bool = False) -> list["ProductCollection | JobFailed"]:
    """Wait for many jobs with one combined progress bar; their products, in order.

    A failed job raises its JobFailed once every job is finished (the others' results stay
    available from their handles), or, with `return_exceptions=True`, takes its place in the
    returned list.
    """
    jobs = list(jobs)
    wait_all(jobs, timeout=timeout, progress=progress)
    results: list[ProductCollection | JobFailed] = []
    for job in jobs:
        if job.failed:
            failure = job.failure()
            if not return_exceptions:
                raise failure
            results.append(failure)
        else:
            results.append(job.dispatcher._collect(job, timeout=timeout))
    return results
