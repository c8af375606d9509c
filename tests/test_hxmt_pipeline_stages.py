"""The two stages of the HXMT platform, cached: stage 1 (`gti`) then stage 2 (`spectrum`),
where editing the GTI recomputes only what depends on it; and the products served through
the dispatcher with their kinds and metadata."""
from __future__ import annotations

import io
from collections import Counter

import numpy as np
import pytest
from astropy.io import fits

from dataserver import Engine, Settings
from tests.hxmt_pipeline_support import (BLANK, CEN, CRAB_EXPOSURES, hxmt_archive, hxmt_engine,  # noqa: F401
                                         hxmt_instruments, plan_of)

EXPOSURE = CRAB_EXPOSURES[0]


def _states(result) -> dict[str, Counter]:
    """{state: Counter(step name)} of one engine run."""
    states: dict[str, Counter] = {"computed": Counter(), "restored": Counter(), "failed": Counter()}
    for event in result.events:
        states[event["state"]][event["step"]] += 1
    return states


def test_editing_the_gti_recomputes_only_what_depends_on_it(hxmt_archive, hxmt_instruments, tmp_path):
    settings = hxmt_archive.settings_with_cache(tmp_path / "cache")
    modules = sorted({m for i in hxmt_instruments.values() for m in i.step_modules()})
    engine = Engine.from_settings(settings, preload=modules)
    try:
        stage_one = engine.run(plan_of(hxmt_instruments, "hxmt_he", "gti", exposures=[EXPOSURE]).targets)
        assert _states(stage_one)["computed"] == Counter({"hxmt_he.pical": 1, "hxmt_he.gtigen": 1,
                                                          "hxmt_he.screen": 1, "hxmt_he.lcgen": 1})
        # Stage 2 with the confirmed default GTI: calibration and screening come from stage 1.
        first = _states(engine.run(plan_of(hxmt_instruments, "hxmt_he", "spectrum", exposures=[EXPOSURE]).targets))
        assert first["restored"]["hxmt_he.pical"] == 1 and first["restored"]["hxmt_he.gtigen"] == 1
        assert "hxmt_he.pical" not in first["computed"] and first["computed"]["hxmt_he.specgen"] == 1
        before = engine.store.stats()["computed"]
        again = _states(engine.run(plan_of(hxmt_instruments, "hxmt_he", "spectrum", exposures=[EXPOSURE]).targets))
        assert not again["computed"] and engine.store.stats()["computed"] == before
        # The user keeps part of the good time: the GTI and what depends on it are recomputed.
        gti = hxmt_archive.truth(EXPOSURE)["good_time"]["HE"]["intervals"][0]
        edited = plan_of(hxmt_instruments, "hxmt_he", "spectrum", exposures=[EXPOSURE],
                         gti_intervals=[[gti[0], gti[0] + 200.0]])
        states = _states(engine.run(edited.targets))
        assert set(states["computed"]) == {"hxmt.gtiselect", "hxmt_he.screen", "hxmt_he.specgen", "hxmt_he.arfgen",
                                           "hxmt_he.bkgmap_spec", "hxmt.sum_spectra", "hxmt.sum_backgrounds",
                                           "hxmt.combine_arfs"}
        assert engine.store.stats()["computed"] == before + sum(states["computed"].values())
        spectrum = engine.run(edited.targets).products[edited.outputs[0].node.key]
        assert spectrum.meta["exposure_s"] == pytest.approx(200.0, rel=0.01)
        # A new expression recomputes gtigen, still not the calibration.
        expression = "ELV>15&&COR>8&&SAA_FLAG==0&&T_SAA>300&&TN_SAA>300&&ANG_DIST<=0.04"
        states = _states(engine.run(plan_of(hxmt_instruments, "hxmt_he", "spectrum", exposures=[EXPOSURE],
                                            gti_expression=expression).targets))
        assert states["computed"]["hxmt_he.gtigen"] == 1 and "hxmt_he.pical" not in states["computed"]
        assert states["restored"]["hxmt_he.rmfgen"] == 1
    finally:
        engine.close()


@pytest.fixture
def hxmt_client(hxmt_archive, tmp_path):
    from dispatcher import create_app

    settings = Settings({"data_dir": str(tmp_path / "xoda"), "archive_dir": str(hxmt_archive.root),
                         "hxmt_index": str(hxmt_archive.data_dir / "hxmt_index.sqlite"),
                         "cache_dir": str(hxmt_archive.data_dir / "cache"), "workers": 2,
                         "secret_key": "hxmt-pipeline-tests-secret-of-forty-bytes"})
    app = create_app(settings)
    yield app.test_client()
    app.extensions["xoda"].close()


def _wait(client, job):
    while job["status"] not in ("done", "failed"):
        job = client.get(f"/api/v1/jobs/{job['job_id']}?wait=25").get_json()
    return job


def test_the_dispatcher_serves_stage_one_with_kinds_and_metadata(hxmt_client):
    reply = hxmt_client.post("/api/v1/jobs?wait=25", json={
        "instrument": "hxmt_me", "product": "gti", "params": {"exposures": [EXPOSURE], "T_format": "hxmt_met"}})
    job = _wait(hxmt_client, reply.get_json())
    assert job["status"] == "done", job["error"]
    outputs = {o["name"]: o for o in hxmt_client.get(f"/api/v1/jobs/{job['job_id']}/products").get_json()["outputs"]}
    gti = outputs[f"{EXPOSURE}_ME_gti.fits"]
    assert gti["kind"] == "gti" and gti["step"] == "hxmt_me.gticorr"
    assert gti["meta"]["exposure"] == EXPOSURE and gti["meta"]["removed_s"]["COR>8"] > 0
    assert sorted(c["step"] for c in gti["chain"]) == ["hxmt_me.grade", "hxmt_me.gticorr", "hxmt_me.gtigen",
                                                       "hxmt_me.pical"]
    raw = outputs[f"{EXPOSURE}_ME_raw.lc"]
    assert raw["kind"] == "lightcurve" and raw["meta"]["role"] == "raw"
    served = hxmt_client.get(f"/api/v1/jobs/{job['job_id']}/products/{EXPOSURE}_ME_gti.fits")
    with fits.open(io.BytesIO(served.data)) as hdul:
        assert hdul[0].header["XODASTEP"] == "hxmt_me.gticorr" and hdul["GTI0"].data.size > 0


def test_the_dispatcher_refuses_bad_input_and_protects_proprietary_exposures(hxmt_client):
    reply = hxmt_client.post("/api/v1/jobs", json={
        "instrument": "hxmt_he", "product": "lightcurve", "params": {"detectors": "0-18", "time_bin": 1e-7}})
    assert reply.status_code == 400
    assert {e["parameter"] for e in reply.get_json()["errors"]} == {"time_bin"}      # schema first
    reply = hxmt_client.post("/api/v1/jobs", json={
        "instrument": "hxmt_he", "product": "lightcurve", "params": {"detectors": "0-18"}})
    assert reply.status_code == 400 and reply.get_json()["errors"][0]["parameter"] == "detectors"
    reply = hxmt_client.post("/api/v1/jobs", json={
        "instrument": "hxmt_le", "product": "spectrum", "params": {"exposures": [CEN], "RA": 170.3, "DEC": -60.6}})
    assert reply.status_code == 403


def test_le_gticorr_and_background_light_curve_read_the_events_once(hxmt_archive, hxmt_instruments, hxmt_engine,
                                                                      monkeypatch):
    """Several blind CCDs and PI ranges (or the small- and large-FOV groups of gticorr) are
    binned in one pass over the event file, and give the products the engine made."""
    from dataserver import ogip
    from plugins.hxmt import pipeline, tasks_gti, tasks_products
    from plugins.hxmt.archive import Archive
    from plugins.hxmt.calib import CHUNK_ROWS
    from plugins.hxmt.fitsio import FitsTable
    from plugins.hxmt.instrument import payload

    planner = hxmt_instruments["hxmt_le"].planner()
    chain = planner.chain
    ref = planner.exposures({"exposures": [BLANK]})[0]
    stage = chain.stage_one(ref, payload("LE").screening_expression)
    gtigen = chain.steps.gtigen.node(unit=ref.exp_id, external=ref.external, exposure=ref.relative,
                                     expression=payload("LE").screening_expression)
    screened = chain.screen(ref, stage.gti)
    curve = chain.lightcurve(ref, stage, screened, "small", (106, 1169), 10.0)
    background = chain.background_lightcurve(ref, stage, curve, screened, "small", (106, 1169))
    nodes = [stage.calibrated, gtigen, stage.gti, screened, curve, background]
    result = hxmt_engine.run(nodes)
    assert result.ok
    made = {node: result.products[node.key] for node in nodes}
    exposure = Archive.load_exposure(hxmt_archive.root / ref.relative)
    event_file = exposure.file("LE-Evt")
    with FitsTable(event_file, 1) as events:
        assert events.rows < CHUNK_ROWS                 # one chunk: a pass is one read
    reads = Counter()
    original = FitsTable.read
    monkeypatch.setattr(FitsTable, "read", lambda self, *a, **k: reads.update([self.path]) or original(self, *a, **k))
    calibrated = made[stage.calibrated].path
    _, meta = tasks_gti.le_gticorr(exposure, calibrated, made[gtigen].path, made[gtigen].meta, sigma=5.0,
                                   smooth_s=120.0, band_keV=(10.0, 13.1), edge_trim_s=0.0)
    assert reads[event_file] == 1 and meta["intervals"] == made[stage.gti].meta["intervals"]
    live = pipeline.live_table("LE", exposure)
    hdul, _ = tasks_products.bkgmap_lc("LE", exposure, made[curve].path, calibrated, made[screened].path, live,
                                       "small", (106, 1169), 64.0)
    assert reads[event_file] == 2
    assert np.array_equal(ogip.read_lightcurve(hdul).rate, ogip.read_lightcurve(made[background]).rate)
