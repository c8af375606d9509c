"""The client's jobs against a live server: typed errors with the server's words, tokens
actually sent, polling with backoff, progress bars, batches with `gather`, time-outs and the
local cache."""
from __future__ import annotations

import io
import tarfile

import pytest

from client import (AuthError, Dispatcher, Job, JobFailed, JobTimeout, NotFound, PollPolicy,
                    ProductCollection, ServerError, ValidationError, gather)
from client.config import TOKEN_FILE_NAME
from tests.client_support import Recorder, isolated_home, server  # noqa: F401
from tests.dispatcher_support import PI, _free_port, mint
from tests.engine_instrument import read_calls


@pytest.fixture
def disp(server, isolated_home):  # noqa: F811
    return Dispatcher(server.url, progress=False)


# ---- errors --------------------------------------------------------------------------------
def test_bad_parameters_are_all_listed_before_anything_is_sent(disp):
    recorder = Recorder(disp)
    with pytest.raises(ValidationError) as caught:
        disp.get_product("enginetest", "spectrum", units=["ok"], nbins=0, threshold=-1, bogus=2)
    error = caught.value
    assert error.local and sorted(error.parameters) == ["bogus", "nbins", "threshold", "units"]
    assert "nbins: must be at least 1 (got 0)" in str(error)
    assert "threshold: must be at least 0 keV (got -1)" in str(error)
    assert "POST" not in [c["method"] for c in recorder.calls]


def test_problems_only_the_server_can_see_come_back_as_validation_errors(disp):
    # The schema accepts duplicate units; the plugin's plan refuses them (QueryError).
    with pytest.raises(ValidationError) as caught:
        disp.get_product("enginetest", "spectrum", units=["D1", "D1"])
    error = caught.value
    assert not error.local and error.status == 400 and error.code == "invalid_parameters"
    assert error.parameters == ["units"] and "each unit may appear only once" in str(error)


def test_unknown_instrument_product_and_job_are_not_found(disp):
    with pytest.raises(NotFound, match="unknown instrument 'nosuch'; available: clienttest"):
        disp.describe("nosuch")
    with pytest.raises(NotFound, match="has no product 'nosuch'; available: spectrum") as caught:
        disp.get_product("enginetest", "nosuch")
    assert caught.value.status == 404 and caught.value.code == "unknown_product"
    with pytest.raises(NotFound, match="no job '0000"):
        disp.job("0" * 64)


def test_a_failing_unit_raises_job_failed_naming_it_and_a_retry_recovers(disp, counters):
    (counters / "fail-F1").write_text("")
    try:
        with pytest.raises(JobFailed) as caught:
            disp.get_product("enginetest", "spectrum", units=["F1", "F2"])
    finally:
        (counters / "fail-F1").unlink()
    failure = caught.value
    assert failure.unit == "F1" and failure.step == "engine_instrument.calibrate"
    assert "detector data of F1 unreadable (injected failure)" in str(failure)
    assert failure.job_id in str(failure) and failure.failures[0]["unit"] == "F1"
    job = disp.job(failure.job_id)
    assert job.failed and job.error["failures"][0]["unit"] == "F1"
    products = job.retry().result()
    assert products.job_id == failure.job_id and len(products) == 3
    assert sorted(read_calls(counters, "calibrate")) == ["F1", "F1", "F2"]   # F2 not redone


def test_an_unreachable_server_is_a_server_error(isolated_home):  # noqa: F811
    disp = Dispatcher(f"http://127.0.0.1:{_free_port()}", progress=False)
    disp._transport.retries = 0
    with pytest.raises(ServerError, match="could not reach the xoda server at http://127.0.0.1"):
        disp.instruments()
    with pytest.raises(ValueError, match="must start with http"):
        Dispatcher("localhost:8000")


# ---- tokens --------------------------------------------------------------------------------
def test_tokens_from_argument_environment_and_home_file_are_sent(server, isolated_home,  # noqa: F811
                                                                  monkeypatch):
    query = {"units": ["S7"]}
    anonymous = Dispatcher(server.url, progress=False)
    with pytest.raises(AuthError, match="access denied") as caught:
        anonymous.get_product("enginesecret", "spectrum", params=query)
    assert caught.value.status == 403
    with pytest.raises(AuthError, match="needs a token") as caught:
        anonymous.jobs(mine=True)
    assert caught.value.status == 401

    token = mint(PI)
    by_argument = Dispatcher(server.url, token=token, progress=False)
    assert by_argument.token_origin == "argument" and token not in repr(by_argument)
    recorder = Recorder(by_argument)
    products = by_argument.get_product("enginesecret", "spectrum", params=query)
    assert all(c["headers"]["Authorization"] == f"Bearer {token}" for c in recorder.calls)
    assert [j.id for j in by_argument.jobs(mine=True)] == [products.job_id]

    monkeypatch.setenv("XODA_TOKEN", token)
    from_env = Dispatcher(server.url, progress=False)
    assert from_env.token_origin == "XODA_TOKEN"
    assert from_env.get_product("enginesecret", "spectrum", params=query).job_id == products.job_id

    monkeypatch.delenv("XODA_TOKEN")
    (isolated_home / TOKEN_FILE_NAME).write_text(token + "\n")
    from_file = Dispatcher(server.url, progress=False)
    assert from_file.token_origin == f"~/{TOKEN_FILE_NAME}"
    assert from_file.job(products.job_id).done

    bad = Dispatcher(server.url, token=token[:-4] + "AAAA", progress=False)
    with pytest.raises(AuthError, match="signature") as caught:
        bad.get_product("enginetest", "spectrum", units=["B1"])
    assert caught.value.status == 401


# ---- polling, progress, batches ------------------------------------------------------------
def test_polling_long_polls_and_backs_off_honouring_the_server_hint(disp):
    recorder = Recorder(disp)
    stream = io.StringIO()
    products = disp.get_product("enginetest", "spectrum", units=["W1"], work_s=4.0,
                                progress=stream)
    assert isinstance(products, ProductCollection)
    submit = next(c for c in recorder.calls if c["method"] == "POST")
    assert submit["url"].endswith("/api/v1/jobs") and float(submit["params"]["wait"]) == 1.0
    polls = [c for c in recorder.calls if c["method"] == "GET" and c["url"].endswith(products.job_id)]
    waits = [float(c["params"]["wait"]) for c in polls]
    # Never under the server's hint (Retry-After: 1), and never at a fixed rate: each poll waits
    # 1.5 times longer than the one before (up to 10 s) while nothing moves, or the hint again
    # once the job progressed. The schedule is checked rather than a count of polls, which
    # depends on how long a loaded machine takes to burn the 4 s of CPU.
    grew = [later == pytest.approx(min(earlier * 1.5, 10.0), abs=2e-3)
            for earlier, later in zip(waits, waits[1:])]
    assert waits and min(waits) >= 1.0
    assert all(g or later == 1.0 for g, later in zip(grew, waits[1:])), waits
    assert any(grew), waits               # the calibration outlasts the first polls
    assert all(c["params"]["report"] == "false" for c in polls)
    text = stream.getvalue()
    assert "enginetest/spectrum" in text and "1/1 units" in text and "computed 4" in text


def test_progress_shows_computed_and_restored_steps(disp):
    disp.get_product("enginetest", "spectrum", units=["P1", "P2"])
    stream = io.StringIO()
    disp.get_product("enginetest", "spectrum", units=["P1", "P2", "P3"], progress=stream)
    final = stream.getvalue().replace("\r", "\n").strip().splitlines()[-1]
    # P3's chain and the merge are computed, P1's and P2's chains restored from the cache.
    assert "3/3 units" in final and "computed 4" in final and "restored 6" in final


def test_wait_false_returns_a_job_and_gather_waits_for_all_with_one_bar(disp, counters):
    jobs = [disp.get_product("enginetest", "spectrum", units=[f"G{i}"], work_s=0.5, wait=False)
            for i in range(3)]
    assert all(isinstance(j, Job) and j.status in ("submitted", "progress", "done") for j in jobs)
    assert len({j.id for j in jobs}) == 3 and "enginetest/spectrum" in repr(jobs[0])
    stream = io.StringIO()
    results = gather(jobs, progress=stream)
    assert [r.job_id for r in results] == [j.id for j in jobs]
    assert all(j.done for j in jobs)
    lines = stream.getvalue().replace("\r", "\n").strip().splitlines()
    assert all(line.startswith("3 jobs") for line in lines if line.strip())
    assert "3/3 units" in lines[-1] and "jobs 3/3" in lines[-1]

    (counters / "fail-GX").write_text("")
    try:
        batch = [disp.submit("enginetest", "spectrum", units=["GX"]),
                 disp.submit("enginetest", "spectrum", units=["G0"])]
        outcome = disp.gather(batch, return_exceptions=True)
    finally:
        (counters / "fail-GX").unlink()
    assert isinstance(outcome[0], JobFailed) and outcome[0].unit == "GX"
    assert isinstance(outcome[1], ProductCollection) and "spectrum_G0.fits" in outcome[1].names
    with pytest.raises(JobFailed, match="GX"):
        gather([batch[0]], progress=False)


def test_a_timeout_leaves_the_job_running_and_it_can_be_picked_up(disp):
    with pytest.raises(JobTimeout) as caught:
        disp.get_product("enginetest", "spectrum", units=["T1"], work_s=3.0, timeout=0.5)
    job = disp.job(caught.value.job_id)
    assert job.status in ("submitted", "progress")
    assert job.result().job_id == job.id and job.done
    assert [e["unit"] for e in job.report if e["state"] == "computed"].count("T1") == 3


def test_a_job_picked_from_the_listing_knows_its_query(disp):
    products = disp.get_product("enginetest", "spectrum", units=["M1"], nbins=8)
    listed = next(j for j in disp.jobs(instrument="enginetest") if j.id == products.job_id)
    picked = listed.result()      # a listing holds summaries, without the parameters
    assert picked.params == products.params and picked.params["nbins"] == 8


def test_a_failed_job_picked_from_the_listing_says_why(disp, counters):
    (counters / "fail-L1").write_text("")
    try:
        with pytest.raises(JobFailed) as direct:
            disp.get_product("enginetest", "spectrum", units=["L1"])
    finally:
        (counters / "fail-L1").unlink()
    listed = next(j for j in disp.jobs(status="failed") if j.id == direct.value.job_id)
    assert listed.failed and listed.error["failures"][0]["unit"] == "L1"
    for picked in (next(j for j in disp.jobs(status="failed") if j.id == listed.id), listed):
        with pytest.raises(JobFailed) as caught:
            picked.result()
        assert (caught.value.unit, caught.value.step) == ("L1", "engine_instrument.calibrate")
        assert "injected failure" in str(caught.value)
    again = next(j for j in disp.jobs(status="failed") if j.id == listed.id)
    failure = gather([again], return_exceptions=True)[0]
    assert isinstance(failure, JobFailed) and failure.unit == "L1"


def test_download_archive_takes_the_servers_name_and_leaves_nothing_when_cut_short(
        disp, tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    job = disp.submit("enginetest", "spectrum", units=["A1"])
    path = job.download_archive(out)                   # waits for the job first
    served = disp._transport.request("GET", f"/api/v1/jobs/{job.id}/archive")
    assert path.name == f"xoda-enginetest-spectrum-{job.id[:12]}.tar.gz"
    assert f"filename={path.name}" in served.headers["Content-Disposition"]
    with tarfile.open(path) as archive:
        assert f"{path.name[:-7]}/spectrum_A1.fits" in archive.getnames()

    def cut_short(url_path):
        yield b"\0" * 1000
        raise ServerError(f"download of {url_path} was cut short: 1000 of 9000 bytes")

    monkeypatch.setattr(disp._transport, "download", cut_short)
    with pytest.raises(ServerError, match="cut short"):
        job.download_archive(out / "again.tar.gz")
    assert sorted(p.name for p in out.iterdir()) == [path.name]


# ---- local cache ---------------------------------------------------------------------------
def test_local_cache_answers_repeated_queries_without_the_server(server, isolated_home,  # noqa: F811
                                                                 tmp_path):
    cache = tmp_path / "cache"
    first = Dispatcher(server.url, cache=cache, progress=False)
    recorder = Recorder(first)
    products = first.get_product("enginetest", "spectrum", units=["K1", "K2"])
    assert any(p.endswith("/products/spectrum_total.fits") for p in recorder.paths("GET"))

    second = Dispatcher(server.url, cache=cache, progress=False)
    silent = Recorder(second)
    again = second.get_product("enginetest", "spectrum", units=["K1", "K2"])
    assert silent.calls == []                                  # not even the schema
    assert again.job_id == products.job_id and again.link == products.link
    assert again.main("spectrum").data["SPECTRUM"].data["COUNTS"].sum() == \
        products.main("spectrum").data["SPECTRUM"].data["COUNTS"].sum()
    assert second.load(products.job_id).names == products.names and silent.calls == []
    assert second.job(products.job_id).report                  # kept with the results

    # Another spelling of the same query: the server names the job, the files come from here.
    third = Dispatcher(server.url, cache=cache, progress=False)
    spelled = Recorder(third)
    third.get_product("enginetest", "spectrum", units=["K1", "K2"], nbins=32.0)
    assert [p for p in spelled.paths() if p.startswith("/jobs/")] == []
    assert spelled.paths("POST") == ["/jobs"]

    # A damaged entry is dropped and fetched again.
    entry = first.cache.base / "jobs" / products.job_id / "files" / "spectrum_total.fits"
    entry.write_bytes(entry.read_bytes()[:100])
    repaired = Dispatcher(server.url, cache=cache, progress=False)
    refetched = Recorder(repaired)
    repaired.get_product("enginetest", "spectrum", units=["K1", "K2"])
    assert any(p.endswith("/products/spectrum_total.fits") for p in refetched.paths("GET"))
    assert first.cache.job_ids() == [products.job_id]
    first.clear_cache()
    assert first.cache.job_ids() == []


def test_poll_policy_is_configurable(server, isolated_home):  # noqa: F811
    patient = Dispatcher(server.url, progress=False,
                         poll=PollPolicy(first_wait_s=0, min_interval_s=2.0, max_interval_s=4.0))
    recorder = Recorder(patient)
    patient.get_product("enginetest", "spectrum", units=["Q1"], work_s=1.0)
    assert "wait" not in next(c for c in recorder.calls if c["method"] == "POST")["params"]
    polls = [float(c["params"]["wait"]) for c in recorder.calls if c["params"].get("wait")]
    assert polls and min(polls) >= 2.0
