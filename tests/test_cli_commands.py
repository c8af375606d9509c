"""The `xoda` command line run as a subprocess against a live server: help everywhere,
describe, get, search, jobs, and the exit codes (0 ok, 1 other, 2 bad input, 3 auth,
4 job failed)."""
from __future__ import annotations

import io
import json
import re

import pytest
from astropy.io import fits

from client.cli import main
from client.commands.common import converter
from tests.client_support import run_xoda, server  # noqa: F401
from tests.dispatcher_support import PI, SECRET, _free_port, mint


def test_help_everywhere(tmp_path, capsys, monkeypatch):
    """In this process (argparse's --help exits 0), and without a server: the options that
    come from schemas are then said to be unavailable."""
    monkeypatch.setenv("XODA_URL", f"http://127.0.0.1:{_free_port()}")
    top = run_xoda(["--help"], cwd=tmp_path)
    assert top.returncode == 0 and "Exit codes: 0 ok" in top.stdout
    commands = ("describe", "get", "search", "jobs", "serve", "token", "sim")
    for command in commands:
        assert f"    {command} " in top.stdout
    for argv in [[c, "--help"] for c in commands] + [["token", "mint", "--help"],
                                                      ["token", "check", "--help"]]:
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code
        out = capsys.readouterr().out
        assert code == 0 and out.startswith(f"usage: xoda {' '.join(argv[:-1])}"), argv
    assert main(["get", "enginetest", "spectrum", "--help"]) == 0
    offline = capsys.readouterr().out
    assert "--out DIR" in offline
    assert "parameters unavailable: could not reach the xoda server" in offline


def test_describe_and_get_help_come_from_the_server_schemas(server, tmp_path):  # noqa: F811
    listing = run_xoda(["describe"], url=server.url, cwd=tmp_path)
    assert listing.returncode == 0
    assert "clienttest" in listing.stdout and "enginesecret" in listing.stdout
    instrument = run_xoda(["describe", "enginesecret"], url=server.url, cwd=tmp_path)
    assert "Observation search criteria:" in instrument.stdout and "prefix" in instrument.stdout
    product = run_xoda(["describe", "clienttest", "lightcurve"], url=server.url, cwd=tmp_path)
    assert product.returncode == 0 and "[10, 400]; > E1_keV" in product.stdout
    schema = json.loads(run_xoda(["describe", "clienttest", "lightcurve", "--json"],
                                 url=server.url, cwd=tmp_path).stdout)
    assert schema["properties"]["E1_keV"]["unit"] == "keV"
    helped = run_xoda(["get", "clienttest", "lightcurve", "--help"], url=server.url, cwd=tmp_path)
    assert helped.returncode == 0
    assert "--E1_keV VALUE" in helped.stdout and "{isot,mjd,test_met}" in helped.stdout
    assert "in keV; default 20; [10, 400]" in " ".join(helped.stdout.split())


def test_get_writes_the_files_and_a_plot(server, tmp_path):  # noqa: F811
    result = run_xoda(["get", "clienttest", "lightcurve", "--T1", "58119",
                       "--T2", "58119.0125", "--T_format", "mjd", "--time_bin", "20",
                       "--E1_keV", "30", "--out", "lc", "--plot", "lc/lc.png"],
                      url=server.url, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "lc/lc_all.lc  [lightcurve]" in result.stdout and "link: http" in result.stdout
    assert "clienttest/lightcurve" in result.stderr and "units" in result.stderr   # the bar
    with fits.open(tmp_path / "lc" / "lc_all.lc") as hdul:
        assert hdul["RATE"].header["TIMEDEL"] == 20.0 and len(hdul["RATE"].data) == 54
        assert hdul[0].header["XODAPROD"] == "lightcurve"
    assert (tmp_path / "lc" / "lc.png").stat().st_size > 5000
    again = run_xoda(["get", "clienttest", "lightcurve", "--T1", "58119", "--T2",
                      "58119.0125", "--T_format", "mjd", "--time_bin", "20", "--E1_keV", "30",
                      "--out", "lc", "--json", "-q"], url=server.url, cwd=tmp_path)
    assert again.returncode == 1 and "--overwrite" in again.stderr
    array = run_xoda(["get", "enginetest", "spectrum", "--units", "C1", "C2", "-p", "nbins=8",
                      "--json", "-q", "--out", "spec"], url=server.url, cwd=tmp_path)
    assert array.returncode == 0, array.stderr
    summary = json.loads(array.stdout)
    assert [f["name"] for f in summary["files"]] == ["spectrum_total.fits", "spectrum_C1.fits",
                                                     "spectrum_C2.fits"]
    assert array.stderr == ""
    fitted = run_xoda(["get", "clienttest", "spectral_fit", "--model", "powerlaw", "--out", "fit",
                       "-q"], url=server.url, cwd=tmp_path)
    assert fitted.returncode == 0, fitted.stderr
    # The fit's numbers are printed, not only the name of the file that holds them.
    assert re.search(r"^powerlaw: \w+ = [\d.]+ for \d+ dof", fitted.stdout, re.M), fitted.stdout
    assert re.search(r"^  PhoIndex = 2\.\d+ -0\.\d+ / \+0\.\d+$", fitted.stdout, re.M), fitted.stdout


def test_exit_codes_for_bad_input_auth_failures_and_unreachable_servers(server, tmp_path,  # noqa: F811
                                                                         counters):
    bad = run_xoda(["get", "clienttest", "lightcurve", "--E1_keV", "500", "--bogus", "3",
                    "--T2", "2017-01-01"], url=server.url, cwd=tmp_path)
    assert bad.returncode == 2
    assert "3 invalid parameters" in bad.stderr
    for fragment in ("bogus: unknown parameter", "E1_keV: must be at most 400 keV (got 500.0)",
                     "T2: must be greater than T1"):
        assert fragment in bad.stderr
    assert run_xoda(["get", "clienttest", "lightcurve", "--E1_keV", "abc"], url=server.url,
                    cwd=tmp_path).returncode == 2
    unknown = run_xoda(["get", "nosuch", "spectrum"], url=server.url, cwd=tmp_path)
    assert unknown.returncode == 2 and "unknown instrument 'nosuch'" in unknown.stderr

    secret = run_xoda(["get", "enginesecret", "spectrum", "--units", "X1"], url=server.url,
                      cwd=tmp_path)
    assert secret.returncode == 3 and "access denied" in secret.stderr
    forged = run_xoda(["get", "enginetest", "spectrum", "--token", mint(PI)[:-3] + "abc"],
                      url=server.url, cwd=tmp_path)
    assert forged.returncode == 3 and "signature" in forged.stderr
    allowed = run_xoda(["get", "enginesecret", "spectrum", "--units", "X1", "-q", "--out", "x"],
                       url=server.url, cwd=tmp_path, env={"XODA_TOKEN": mint(PI)})
    assert allowed.returncode == 0, allowed.stderr

    (counters / "fail-E1").write_text("")
    try:
        failed = run_xoda(["get", "enginetest", "spectrum", "--units", "E1", "E2", "-q"],
                          url=server.url, cwd=tmp_path)
    finally:
        (counters / "fail-E1").unlink()
    assert failed.returncode == 4
    assert "unit E1, step engine_instrument.calibrate failed" in failed.stderr
    assert "injected failure" in failed.stderr

    down = run_xoda(["describe"], url=f"http://127.0.0.1:{_free_port()}", cwd=tmp_path)
    assert down.returncode == 1 and "could not reach the xoda server" in down.stderr
    assert run_xoda(["describe"], url="localhost:1", cwd=tmp_path).returncode == 2


def test_no_wait_then_jobs_lists_shows_and_fetches(server, tmp_path, counters):  # noqa: F811
    submitted = run_xoda(["get", "enginetest", "spectrum", "--units", "J1", "--work_s", "0.5",
                          "--no-wait", "--json"], url=server.url, cwd=tmp_path)
    assert submitted.returncode == 0, submitted.stderr
    job_id = json.loads(submitted.stdout)["job_id"]
    listing = run_xoda(["jobs", "--instrument", "enginetest"], url=server.url, cwd=tmp_path)
    assert listing.returncode == 0 and job_id in listing.stdout
    fetched = run_xoda(["jobs", job_id[:10], "--out", "fetched", "-q"], url=server.url, cwd=tmp_path)
    assert fetched.returncode == 0, fetched.stderr
    assert (tmp_path / "fetched" / "spectrum_J1.fits").exists()
    shown = run_xoda(["jobs", job_id, "--json"], url=server.url, cwd=tmp_path)
    assert json.loads(shown.stdout)["status"] == "done"

    (counters / "fail-J9").write_text("")
    try:
        submitted = run_xoda(["get", "enginetest", "spectrum", "--units", "J9", "--no-wait",
                              "--json"], url=server.url, cwd=tmp_path)
        failed_id = json.loads(submitted.stdout)["job_id"]
        waited = run_xoda(["jobs", failed_id, "--wait", "-q"], url=server.url, cwd=tmp_path)
    finally:
        (counters / "fail-J9").unlink()
    assert waited.returncode == 4 and "unit J9, step engine_instrument.calibrate" in waited.stdout
    assert "failed" in waited.stdout.splitlines()[0]
    assert ".fits" not in waited.stdout          # no file names of a job that made none
    retried = run_xoda(["jobs", failed_id, "--retry", "--wait", "-q"], url=server.url, cwd=tmp_path)
    assert retried.returncode == 0 and ", done" in retried.stdout
    missing = run_xoda(["jobs", "ffffffffff"], url=server.url, cwd=tmp_path)
    assert missing.returncode == 2 and "no job id starts with" in missing.stderr
    mine = run_xoda(["jobs", "--mine"], url=server.url, cwd=tmp_path)
    assert mine.returncode == 3 and "needs a token" in mine.stderr


def test_search_with_time_aliases_and_criteria_from_the_schemas(server, tmp_path):  # noqa: F811
    found = run_xoda(["search", "--prefix", "P", "--from", "2000-01-01"], url=server.url,
                     cwd=tmp_path)
    assert found.returncode == 0, found.stderr
    assert "enginesecret: 1 observation" in found.stdout and "P1" in found.stdout
    as_pi = run_xoda(["search", "-i", "enginesecret", "--json"], url=server.url, cwd=tmp_path,
                     env={"XODA_TOKEN": mint(PI)})
    rows = json.loads(as_pi.stdout)["enginesecret"]["rows"]
    assert sorted(r["unit"] for r in rows) == ["P1", "S1", "S2"]
    assert "--prefix VALUE" in run_xoda(["search", "--help"], url=server.url, cwd=tmp_path).stdout
    # HXMT's search takes --name; the engine's test instruments do not and are skipped.
    named = run_xoda(["search", "--name", "Crab", "--from", "2018-01-01"], url=server.url,
                     cwd=tmp_path)
    assert named.returncode == 0 and "skipping enginesecret: no criterion name" in named.stderr
    assert "hxmt_he: 0 observations" in named.stdout
    bad = run_xoda(["search", "--from", "yesterday"], url=server.url, cwd=tmp_path)
    assert bad.returncode == 2 and "T1: 'yesterday' is not an ISO 8601 time" in bad.stderr
    nothing = run_xoda(["search", "-i", "clienttest"], url=server.url, cwd=tmp_path)
    assert nothing.returncode == 2 and "offers no observation search" in nothing.stderr


def test_token_commands_still_work_with_the_new_main(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("XODA_SECRET_KEY", SECRET)
    monkeypatch.setenv("XODA_DATA_DIR", str(tmp_path / "data"))
    assert main(["token", "mint", "--subject", "someone@example.org"]) == 0
    token = capsys.readouterr().out
    monkeypatch.setattr("sys.stdin", io.StringIO(token))
    assert main(["token", "check"]) == 0
    assert "subject: someone@example.org" in capsys.readouterr().out
    with pytest.raises(SystemExit) as caught:
        main(["serve", "--bogus"])
    assert caught.value.code == 2


def test_serve_refuses_a_data_directory_whose_jobs_use_another_cache(tmp_path):
    from dispatcher.jobstore import JobStore

    jobs = JobStore(tmp_path / "data" / "jobs")
    (tmp_path / "cache-a").mkdir()
    jobs.bind_cache(tmp_path / "cache-a")
    jobs.close()
    refused = run_xoda(["serve", "--port", "8"], cwd=tmp_path, env={
        "XODA_DATA_DIR": str(tmp_path / "data"), "XODA_CACHE_DIR": str(tmp_path / "cache-b")})
    assert refused.returncode == 2, refused.stderr
    assert "belongs to the product cache" in refused.stderr and "Traceback" not in refused.stderr
    assert "serving" not in refused.stdout


@pytest.mark.parametrize("fragment, text, value", [
    ({"type": "integer"}, "7", 7), ({"type": "number"}, "2.5", 2.5),
    ({"type": ["number", "null"]}, "null", None), ({"type": "boolean"}, "yes", True),
    ({"type": ["string", "number"], "x-time": {}}, "58119.5", "58119.5"),
    ({"type": "object"}, '{"a": 1}', {"a": 1}), ({"type": "string"}, "Crab", "Crab"),
    # One value of an array of intervals: "START,STOP" or JSON.
    ({"type": "array", "items": {"type": "number"}}, "1.5,2", [1.5, 2.0]),
    ({"type": "array", "items": {"type": "number"}}, "[1.5, 2]", [1.5, 2]),
    ({"type": ["string", "number"]}, "178419722", 178419722.0),
    ({"type": ["string", "number"]}, "2018-01-01", "2018-01-01")])
def test_option_values_are_read_as_the_schema_types(fragment, text, value):
    assert converter(fragment)(text) == value
