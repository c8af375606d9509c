"""A small simulated HXMT archive shared by the hxmt tests (built once per test session).

Five proposals like the demo's, with short exposures: two Crab exposures of 600 s with all
payloads (one contains an SAA passage, the other an Earth occultation), and single-payload
exposures of 200 s of Cyg X-1 (public since 2018), Aql X-1 (ToO, proprietary, PI wang.fang),
Cen X-3 (GO, proprietary, PI chen.li) and a blank field.
"""
from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pytest

from plugins.hxmt.demo import CRAB, CYG_X1, find_window
from plugins.hxmt.orbit import Orbit
from plugins.hxmt.simulate import simulate_archive
from plugins.hxmt.skymodel import build_spec
from plugins.hxmt.timeconv import met_to_iso, to_met

# Proprietary periods are counted from the day the tests run, so they never lapse.
TODAY = dt.date.today()
SEED = 99


def small_document(today: dt.date = TODAY) -> dict:
    orbit = Orbit.from_spec({})
    crab_saa = find_window(orbit, CRAB["ra"], CRAB["dec"], to_met("2017-08-27"), 600.0, 0.4, "saa")
    crab_occ = find_window(orbit, CRAB["ra"], CRAB["dec"], crab_saa + 1200.0, 600.0, 0.4, "occultation")
    recent = lambda days: (today - dt.timedelta(days=days)).isoformat() + "T06:00:00"  # noqa: E731
    return {
        "seed": SEED,
        "sources": [CRAB, CYG_X1,
                    {"name": "Aql X-1", "ra": 287.81687, "dec": 0.58497,
                     "spectrum": {"model": "bbodyrad", "kT": 1.5, "norm": 400.0, "nh": 0.4}},
                    {"name": "Cen X-3", "ra": 170.31288, "dec": -60.62379,
                     "spectrum": {"model": "cutoffpl", "norm": 0.42, "index": 1.2, "ecut": 20.0, "nh": 2.0},
                     "variability": {"type": "periodic", "period": 4.8, "pulsed_fraction": 0.4}}],
        "proposals": [
            {"id": "P0101299", "type": "CAL", "pi": "hxmt_cal", "observations": [
                {"id": "P0101299001", "target": "Crab", "roll": 30.0, "exposures": [
                    {"start": met_to_iso(crab_saa, precision=0), "duration": 600},
                    {"start": met_to_iso(crab_occ, precision=0), "duration": 600}]}]},
            {"id": "P0101315", "type": "Core", "pi": "hxmt_core", "public_date": "+365d", "observations": [
                {"target": "Cyg X-1", "exposures": [
                    {"start": "2017-10-31T03:00:00", "duration": 200, "payloads": ["ME"]}]}]},
            {"id": "P0101331", "type": "CAL", "pi": "hxmt_cal", "observations": [
                {"target": "Blank field 1", "ra": 150.0, "dec": 55.0, "exposures": [
                    {"start": "2019-03-12T05:00:00", "duration": 200, "payloads": ["ME"]}]}]},
            {"id": "P0201012", "type": "ToO", "pi": "wang.fang", "pi_name": "Fang Wang", "public_date": "+365d",
             "observations": [{"target": "Aql X-1", "exposures": [
                 {"start": recent(20), "duration": 200, "payloads": ["LE"]}]}]},
            {"id": "P0301040", "type": "GO", "pi": "chen.li", "pi_name": "Li Chen", "public_date": "+365d",
             "observations": [{"target": "Cen X-3", "exposures": [
                 {"start": recent(45), "duration": 200, "payloads": ["HE"]}]}]},
        ],
    }


def build_small_archive(base: Path) -> Path:
    """Build (once) and return the archive root under `base`."""
    root = base / "hxmt-small-archive"
    done = base / "hxmt-small-archive.done"
    if not done.exists():
        shutil.rmtree(root, ignore_errors=True)
        simulate_archive(build_spec(small_document()), root, workers=2)
        done.write_text("ok")
    return root


@pytest.fixture(scope="session")
def small_archive(tmp_path_factory) -> Path:
    return build_small_archive(tmp_path_factory.getbasetemp())


def truths(root: Path) -> dict[str, dict]:
    """exp_id -> truth record of every exposure under `root`."""
    return {json.loads(p.read_text())["exp_id"]: json.loads(p.read_text()) for p in root.rglob("SIM/truth.json")}
