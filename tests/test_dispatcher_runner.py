"""The job store and runner shared by every web worker: claims, liveness locks, the write lock."""
import fcntl
import sqlite3
import threading

from dispatcher import runner as runner_module
from dispatcher.jobstore import JobStore, NewJob
from dispatcher.runner import JobRunner


def test_a_starting_runner_is_never_taken_for_dead(tmp_path, monkeypatch):
    store = JobStore(tmp_path / "jobs")
    runners = tmp_path / "runners"
    other = JobRunner(store, lambda job, claimant: None, 1, runners)
    starting = JobRunner(store, lambda job, claimant: None, 1, runners)
    real_flock = fcntl.flock
    scanned = []

    def flock_after_another_worker_scans(handle, operation):
        # Another web worker starting at the same moment looks at every lock file just
        # before this runner locks its own: the worst interleaving.
        if not scanned:
            scanned.extend(path.stem for path in runners.glob("*.lock"))
            for claimant in scanned:
                other.alive(claimant)
        return real_flock(handle, operation)

    monkeypatch.setattr(runner_module.fcntl, "flock", flock_after_another_worker_scans)
    starting.ensure_started()
    monkeypatch.undo()
    try:
        assert other.alive(starting.claimant)
        assert [p.name for p in runners.iterdir()] == [f"{starting.claimant}.lock"]
    finally:
        starting.stop(timeout=5)
        store.close()
    assert not other.alive(starting.claimant)


def _new_job(job_id: str = "a" * 64) -> NewJob:
    return NewJob(id=job_id, instrument="enginetest", product="spectrum", params_json="{}",
                  outputs=[{"name": "x.fits", "key": "k"}], units=[], nodes=1, summary={})


def test_a_repeated_submission_does_not_wait_for_the_write_lock(tmp_path):
    store = JobStore(tmp_path / "jobs")
    job, queued = store.submit(_new_job())
    assert queued
    claimed = store.claim("runner-a", lambda claimant: True)
    assert claimed.id == job.id and store.finish(job.id, "runner-a", "done")

    writer = sqlite3.connect(store.path, timeout=1, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")      # as a running job recording an event
    answered = []
    thread = threading.Thread(target=lambda: answered.append(store.submit(_new_job())))
    try:
        thread.start()
        thread.join(5)
        assert answered and answered[0][0].status == "done" and answered[0][1] is False
    finally:
        writer.execute("ROLLBACK")
        writer.close()
        thread.join()
        store.close()
    # A job that must run again still takes the lock and is queued.
    store = JobStore(tmp_path / "jobs")
    again, queued = store.submit(_new_job(), rerun=lambda job: True)
    assert queued and again.status == "submitted"
    store.close()


def test_a_job_store_belongs_to_one_product_cache(tmp_path):
    from dataserver import Settings
    from dispatcher.service import Service

    def service(cache: str) -> Service:
        return Service(Settings({"data_dir": str(tmp_path / "data"), "cache_dir": cache,
                                 "secret_key": "s" * 32}), {})

    first = tmp_path / "cache-a"
    service(str(first)).close()
    service(str(first)).close()          # the same service restarting
    try:
        service(str(tmp_path / "cache-b"))
    except ValueError as exc:
        message = str(exc)
    else:
        raise AssertionError("a second cache was accepted for the same jobs")
    assert str(first.resolve()) in message and "cache-b" in message
    assert "XODA_DATA_DIR" in message and "XODA_CACHE_DIR" in message
    assert not (tmp_path / "cache-b").exists()

    # A cache moved away on purpose: the new location takes its place.
    first.rename(tmp_path / "cache-old")
    service(str(tmp_path / "cache-b")).close()
    service(str(tmp_path / "cache-b")).close()
