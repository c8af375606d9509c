"""Persistent job state in SQLite (`<data_dir>/jobs/jobs.sqlite`), shared by every process.

A job is identified by the content key of its normalised query, so the same query is the same
row whoever submits it and however often. Every web worker reads and writes the same database
(WAL mode), so a job's status is visible from all of them; exactly one process executes a job
at a time because a runner must *claim* it with an atomic conditional UPDATE, and a claim
only passes to another runner when its holder is gone (see `dispatcher.runner`).

Tables:
- `jobs`: the query (instrument, product, normalised parameters), the planned outputs and
  data units (with their access rights), status (`submitted`, `progress`, `done`, `failed`),
  times, the run counter and the current claimant.
- `events`: the engine's progress events of each run, per unit and step.
- `submissions`: which token subjects asked for a job (for "my jobs"); never the token.
- `meta`: the product cache the jobs' outputs live in (`bind_cache`).
"""
from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

STATUSES = ("submitted", "progress", "done", "failed")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    instrument TEXT NOT NULL,
    product TEXT NOT NULL,
    params TEXT NOT NULL,
    status TEXT NOT NULL,
    outputs TEXT NOT NULL,
    units TEXT NOT NULL,
    nodes INTEGER NOT NULL,
    summary TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    started REAL,
    finished REAL,
    run INTEGER NOT NULL DEFAULT 0,
    claimant TEXT,
    error TEXT
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status, created);
CREATE INDEX IF NOT EXISTS jobs_updated ON jobs(updated);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL,
    run INTEGER NOT NULL,
    unit TEXT,
    step TEXT NOT NULL,
    version TEXT NOT NULL,
    state TEXT NOT NULL,
    message TEXT NOT NULL,
    time REAL NOT NULL,
    elapsed REAL
);
CREATE INDEX IF NOT EXISTS events_job ON events(job_id, run, seq);
CREATE TABLE IF NOT EXISTS submissions (
    job_id TEXT NOT NULL,
    subject TEXT NOT NULL,
    time REAL NOT NULL,
    PRIMARY KEY (job_id, subject)
);
CREATE TABLE IF NOT EXISTS meta (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class Job:
    id: str
    instrument: str
    product: str
    params: dict[str, Any]
    status: str
    outputs: list[dict[str, Any]]
    units: list[dict[str, Any]]
    nodes: int
    summary: dict[str, Any]
    created: float
    updated: float
    started: float | None
    finished: float | None
    run: int
    claimant: str | None
    error: dict[str, Any] | None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> "Job":
        return cls(id=row["id"], instrument=row["instrument"], product=row["product"],
                   params=json.loads(row["params"]), status=row["status"],
                   outputs=json.loads(row["outputs"]), units=json.loads(row["units"]),
                   nodes=row["nodes"], summary=json.loads(row["summary"]),
                   created=row["created"], updated=row["updated"], started=row["started"],
                   finished=row["finished"], run=row["run"], claimant=row["claimant"],
                   error=json.loads(row["error"]) if row["error"] else None)

    @property
    def complete(self) -> bool:
        return self.status in ("done", "failed")


@dataclass(frozen=True)
class NewJob:
    """What a submission knows about a job before it exists."""

    id: str
    instrument: str
    product: str
    params_json: str
    outputs: list[dict[str, Any]]
    units: list[dict[str, Any]]
    nodes: int
    summary: dict[str, Any]


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def _must_run(job: Job, new: NewJob, rerun: Callable[[Job], bool]) -> bool:
    """Whether submitting `new` again queues its existing `job`: failed, or done but planned
    differently now (steps of another version), or `rerun` says so (products evicted)."""
    return job.status == "failed" or (job.status == "done" and (
        job.outputs != json.loads(_dumps(new.outputs)) or rerun(job)))


class JobStore:
    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / "jobs.sqlite"
        self._local = threading.local()
        self._db().executescript(_SCHEMA)     # idempotent; runs in its own transaction

    # ---- connections ---------------------------------------------------------------------
    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=60, isolation_level=None,
                                 check_same_thread=True)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            self._local.db = db
        return db

    class _Tx:
        def __init__(self, db: sqlite3.Connection):
            self.db = db

        def __enter__(self) -> sqlite3.Connection:
            self.db.execute("BEGIN IMMEDIATE")
            return self.db

        def __exit__(self, kind, value, tb) -> None:
            self.db.execute("COMMIT" if kind is None else "ROLLBACK")

    def _transaction(self) -> "_Tx":
        return self._Tx(self._db())

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

    def bind_cache(self, cache_dir: Path) -> None:
        """Record the product cache these jobs' outputs live in, refusing another one.

        Jobs name their outputs by cache key, and any service on this store runs any queued
        job: a second service with its own cache would run jobs into a cache the first never
        reads (and read done jobs whose products it does not have). A recorded cache that no
        longer exists was moved on purpose, and the new one takes its place."""
        cache = str(Path(cache_dir).resolve())
        with self._transaction() as db:
            row = db.execute("SELECT value FROM meta WHERE name = 'cache_dir'").fetchone()
            if row and row["value"] != cache and Path(row["value"]).exists():
                raise ValueError(
                    f"the job store {self.path} belongs to the product cache {row['value']}, "
                    f"not {cache}: give each service its own XODA_DATA_DIR, or the same "
                    f"XODA_CACHE_DIR")
            if not row or row["value"] != cache:
                db.execute("INSERT OR REPLACE INTO meta (name, value) VALUES ('cache_dir', ?)",
                           (cache,))

    # ---- reading -------------------------------------------------------------------------
    def get(self, job_id: str) -> Job | None:
        row = self._db().execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return Job.from_row(row) if row else None

    def events(self, job_id: str, run: int) -> list[dict[str, Any]]:
        rows = self._db().execute(
            "SELECT unit, step, version, state, message, time, elapsed FROM events "
            "WHERE job_id = ? AND run = ? ORDER BY seq", (job_id, run)).fetchall()
        return [{"unit": r["unit"], "step": r["step"], "version": json.loads(r["version"]),
                 "state": r["state"], "message": r["message"], "time": r["time"],
                 "elapsed": r["elapsed"]} for r in rows]

    def list(self, *, limit: int = 50, status: str | None = None, instrument: str | None = None,
             subject: str | None = None) -> Iterator[Job]:
        """Jobs, most recently updated first, lazily (callers filter by access rights)."""
        clauses, args = [], []
        if status:
            clauses.append("j.status = ?")
            args.append(status)
        if instrument:
            clauses.append("j.instrument = ?")
            args.append(instrument)
        join = ""
        if subject is not None:
            join = "JOIN submissions s ON s.job_id = j.id AND s.subject = ?"
            args.insert(0, subject)
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        cursor = self._db().execute(f"SELECT j.* FROM jobs j {join} {where} "
                                    "ORDER BY j.updated DESC", args)
        for row in cursor:
            yield Job.from_row(row)

    # ---- writing -------------------------------------------------------------------------
    def submit(self, new: NewJob, rerun: Callable[[Job], bool] = lambda job: False) -> tuple[Job, bool]:
        """The job for `new`, created if absent, restarted if failed (or if `rerun(job)` says
        a finished job must run again); returns (job, whether it was (re)queued)."""
        existing = self.get(new.id)
        if existing is not None and not _must_run(existing, new, rerun):
            # The warm path (a repeated query): answered without waiting for the write lock,
            # which running jobs take for every event they record.
            return existing, False
        now = time.time()
        with self._transaction() as db:
            row = db.execute("SELECT * FROM jobs WHERE id = ?", (new.id,)).fetchone()
            if row is None:
                db.execute(
                    "INSERT INTO jobs (id, instrument, product, params, status, outputs, units, "
                    "nodes, summary, created, updated) VALUES (?, ?, ?, ?, 'submitted', ?, ?, ?, ?, ?, ?)",
                    (new.id, new.instrument, new.product, new.params_json, _dumps(new.outputs),
                     _dumps(new.units), new.nodes, _dumps(new.summary), now, now))
                queued = True
            else:
                queued = _must_run(Job.from_row(row), new, rerun)
                if queued:
                    db.execute(
                        "UPDATE jobs SET status = 'submitted', outputs = ?, units = ?, nodes = ?, "
                        "summary = ?, updated = ?, finished = NULL, claimant = NULL, error = NULL "
                        "WHERE id = ?",
                        (_dumps(new.outputs), _dumps(new.units), new.nodes, _dumps(new.summary),
                         now, new.id))
            job = Job.from_row(db.execute("SELECT * FROM jobs WHERE id = ?", (new.id,)).fetchone())
        return job, queued

    def requeue(self, job_id: str) -> Job | None:
        """Put a failed (or finished) job back in the queue; None if it does not exist."""
        with self._transaction() as db:
            db.execute("UPDATE jobs SET status = 'submitted', updated = ?, finished = NULL, "
                       "claimant = NULL, error = NULL WHERE id = ? AND status IN ('done', 'failed')",
                       (time.time(), job_id))
            row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return Job.from_row(row) if row else None

    def record_submission(self, job_id: str, subject: str) -> None:
        self._db().execute("INSERT OR REPLACE INTO submissions (job_id, subject, time) "
                           "VALUES (?, ?, ?)", (job_id, subject, time.time()))

    def claim(self, claimant: str, alive: Callable[[str], bool]) -> Job | None:
        """Atomically take the oldest job that is queued, or whose claimant is gone."""
        candidates = self._db().execute(
            "SELECT id, claimant FROM jobs WHERE status IN ('submitted', 'progress') "
            "ORDER BY created LIMIT 50").fetchall()
        for row in candidates:
            holder = row["claimant"]
            if holder is not None and (holder == claimant or alive(holder)):
                continue
            now = time.time()
            with self._transaction() as db:
                taken = db.execute(
                    "UPDATE jobs SET claimant = ?, status = 'progress', run = run + 1, "
                    "started = ?, updated = ? WHERE id = ? AND claimant IS ? "
                    "AND status IN ('submitted', 'progress')",
                    (claimant, now, now, row["id"], holder)).rowcount
                if taken == 1:
                    return Job.from_row(db.execute("SELECT * FROM jobs WHERE id = ?",
                                                   (row["id"],)).fetchone())
        return None

    def update_plan(self, job_id: str, claimant: str, outputs: Sequence[Mapping[str, Any]],
                    units: Sequence[Mapping[str, Any]], nodes: int, summary: Mapping[str, Any]) -> None:
        self._db().execute("UPDATE jobs SET outputs = ?, units = ?, nodes = ?, summary = ? "
                           "WHERE id = ? AND claimant = ?",
                           (_dumps(list(outputs)), _dumps(list(units)), nodes, _dumps(summary),
                            job_id, claimant))

    def add_event(self, job_id: str, run: int, event: Mapping[str, Any]) -> None:
        now = time.time()
        with self._transaction() as db:
            db.execute("INSERT INTO events (job_id, run, unit, step, version, state, message, "
                       "time, elapsed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (job_id, run, event.get("unit"), event["step"],
                        json.dumps(event.get("version")), event["state"],
                        str(event.get("message", "")), float(event.get("time") or now),
                        event.get("elapsed")))
            db.execute("UPDATE jobs SET updated = ? WHERE id = ?", (now, job_id))

    def finish(self, job_id: str, claimant: str, status: str,
               error: Mapping[str, Any] | None = None) -> bool:
        """Record the outcome of a run, if `claimant` still holds the job."""
        if status not in ("done", "failed"):
            raise ValueError(f"cannot finish a job as {status!r}")
        now = time.time()
        with self._transaction() as db:
            changed = db.execute(
                "UPDATE jobs SET status = ?, error = ?, finished = ?, updated = ?, claimant = NULL "
                "WHERE id = ? AND claimant = ?",
                (status, _dumps(error) if error else None, now, now, job_id, claimant)).rowcount
        return changed == 1
