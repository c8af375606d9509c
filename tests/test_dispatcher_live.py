"""The service as deployed: gunicorn with several workers, killed and restarted mid-job,
hammered with identical submissions, and checked for tokens in everything it keeps."""
import threading
import time
from pathlib import Path

import pytest
import requests

from tests.dispatcher_support import PI, LiveServer, bearer, mint, spectrum, wait_done
from tests.engine_instrument import read_calls


def _calibrated(body, state):
    return {e["unit"] for e in body.get("report", [])
            if e["state"] == state and e["step"] == "engine_instrument.calibrate"}


def test_a_job_running_when_the_server_is_killed_resumes_after_restart(tmp_path, counters):
    data = tmp_path / "xoda"
    units = [f"R{i}" for i in range(8)]
    server = LiveServer(data, tmp_path / "first.log", workers=2).start()
    try:
        job_id = server.post("/api/v1/jobs", json=spectrum(units, work_s=0.5)).json()["job_id"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            body = server.get(f"/api/v1/jobs/{job_id}").json()
            if len(_calibrated(body, "computed")) >= 2:
                break
            time.sleep(0.05)
        assert body["status"] == "progress", body["status"]
    finally:
        server.kill()                      # SIGKILL: master, web workers, engine workers
    finished_before = _calibrated(body, "computed")
    assert 2 <= len(finished_before) < len(units)

    restarted = LiveServer(data, tmp_path / "second.log", workers=2).start()
    try:
        done = wait_done(restarted, job_id)
    finally:
        restarted.stop()
    assert done["status"] == "done" and done["run"] == 2
    assert finished_before <= _calibrated(done, "restored")
    calls = read_calls(counters, "calibrate")
    assert all(calls.count(unit) == 1 for unit in finished_before)
    assert set(calls) == set(units) and len(calls) < 2 * len(units)
    assert "running job " + job_id in (tmp_path / "second.log").read_text()


def test_identical_concurrent_submissions_share_one_job_and_compute_once(tmp_path, counters):
    server = LiveServer(tmp_path / "xoda", tmp_path / "server.log", workers=3).start()
    try:
        replies, errors = [], []

        def submit():
            try:
                with requests.Session() as own:      # one client per thread, as in real life
                    replies.append(server.post("/api/v1/jobs", session=own, json=spectrum(
                        ["C1", "C2", "C3"], work_s=0.2)).json())
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=submit) for _ in range(12)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors and len(replies) == 12
        assert len({r["job_id"] for r in replies}) == 1
        done = wait_done(server, replies[0]["job_id"])
        assert done["status"] == "done" and done["run"] == 1
        # Every web worker answers for the job: new connections, taken by any worker.
        for _ in range(6):
            reply = server.get(f"/api/v1/jobs/{done['job_id']}", headers={"Connection": "close"})
            assert reply.json()["status"] == "done"
    finally:
        server.stop()
    assert sorted(read_calls(counters, "calibrate")) == ["C1", "C2", "C3"]
    assert len(read_calls(counters, "merge")) == 1
    log = (tmp_path / "server.log").read_text()
    assert log.count("running job " + done["job_id"]) == 1


def _all_bytes(root: Path) -> list[tuple[Path, bytes]]:
    return [(p, p.read_bytes()) for p in root.rglob("*") if p.is_file()]


@pytest.mark.parametrize("log_level", ["DEBUG"])
def test_tokens_appear_in_nothing_the_service_keeps(tmp_path, log_level):
    log_path = tmp_path / "server.log"
    server = LiveServer(tmp_path / "xoda", log_path, workers=2,
                        env={"XODA_LOG_LEVEL": log_level}).start()
    token = mint(PI, ["secret-team"])
    expired = mint(PI, now=time.time() - 7200)
    secret = {"instrument": "enginesecret", "product": "spectrum", "params": {"units": ["S5"]}}
    try:
        job = server.post("/api/v1/jobs?wait=20", json=secret, headers=bearer(token)).json()
        done = wait_done(server, job["job_id"], bearer(token))
        assert done["status"] == "done"
        oda = server.get("/run_analysis", params={
            "instrument": "enginesecret", "product_type": "spectrum", "units": '["S5"]',
            "query_status": "new", "session_id": "A" * 16, "token": token}).json()
        assert oda["query_status"] == "done"
        link = server.session.get(done["link"] + "&token=" + token, timeout=60,
                                  headers={"Accept": "application/json"})
        assert link.status_code == 200
        for path in ("/products", "/archive", "/snippet", "/products/spectrum_total.fits"):
            reply = server.get(f"/api/v1/jobs/{job['job_id']}{path}", params={"token": token})
            assert reply.status_code == 200 and token.encode() not in reply.content
        assert server.get("/api/v1/jobs", headers=bearer(expired)).status_code == 401
        assert server.get("/api/v1/jobs", params={"token": expired}).status_code == 401
        bad = server.post("/api/v1/jobs", json={**secret, "params": {"units": ["bad"]}},
                          headers=bearer(token))
        assert bad.status_code == 400 and token not in bad.text
        replies = [done, oda, link.json()]
    finally:
        server.stop()
    log = log_path.read_text()
    assert "/run_analysis" in log and "running job" in log      # the log is really written
    signatures = [t.encode() for t in (token, expired)] + [
        t.split(".")[2].encode() for t in (token, expired)]
    for path, content in _all_bytes(tmp_path):
        for needle in signatures:
            assert needle not in content, f"a token is stored in {path}"
    for reply in replies:
        assert token not in str(reply)
