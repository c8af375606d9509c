"""One small simulated HXMT archive for the pipeline tests (session-scoped), and helpers.

A subset of the demo: the Crab (two exposures of 2017-08-27, one with an Earth occultation,
one with an SAA passage; plus a short HE-only exposure), the blank field (one exposure with an
SAA passage) and Cen X-3 (4.8 s pulsar, proprietary to chen.li). Exposure windows are found on
the model orbit as the demo does, so every exposure has good time under the default screening.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dataserver import Engine, Settings, load_instruments
from dataserver.params import normalise
from plugins.hxmt import demo
from plugins.hxmt.catalog import ObservationIndex
from plugins.hxmt.orbit import Orbit
from plugins.hxmt.skymodel import build_spec
from plugins.hxmt.simulate import simulate_archive

CEN_X3 = {"name": "Cen X-3", "ra": 170.31288, "dec": -60.62379,
          "spectrum": {"model": "cutoffpl", "norm": 0.42, "index": 1.2, "ecut": 20.0, "nh": 2.0},
          "variability": {"type": "periodic", "period": demo.CEN_X3_PERIOD, "epoch": "2019-05-01T00:00:00",
                          "pulsed_fraction": 0.4,
                          "profile": [{"phase": 0.0, "width": 0.12, "amplitude": 1.0},
                                      {"phase": 0.5, "width": 0.15, "amplitude": 0.5}]}}
CRAB_EXPOSURES = ("P010129900101", "P010129900102")
CRAB_HE_ONLY = "P010129900201"
BLANK = "P010133100101"
CEN = "P030104000101"
CEN_OWNER = "chen.li"


def document() -> dict[str, Any]:
    orbit = Orbit.from_spec({})
    crab = (demo.CRAB["ra"], demo.CRAB["dec"])
    blank = (demo.BLANK_FIELD["ra"], demo.BLANK_FIELD["dec"])
    crab_windows = demo._exposures(orbit, *crab, "2017-08-27", [(1000.0, "occultation"), (1000.0, "saa")])
    return {
        "seed": 4711,
        "simulation": {"he_csi_rate": 5.0, "he_veto_rate": 3.0},
        "sources": [demo.CRAB, CEN_X3],
        "proposals": [
            {"id": "P0101299", "type": "CAL", "pi": "hxmt_cal", "observations": [
                {"id": "P0101299001", "target": "Crab", "roll": 30.0, "exposures": crab_windows},
                {"id": "P0101299002", "target": "Crab", "roll": 0.0, "exposures": [
                    {**demo._exposures(orbit, *crab, "2018-09-05", [(300.0, None)], 0.6)[0], "payloads": ["HE"]}]}]},
            {"id": "P0101331", "type": "CAL", "pi": "hxmt_cal", "observations": [
                {"id": "P0101331001", **demo.BLANK_FIELD, "roll": 0.0,
                 "exposures": demo._exposures(orbit, *blank, "2019-03-12", [(1500.0, "saa")])}]},
            {"id": "P0301040", "type": "GO", "pi": CEN_OWNER, "pi_name": "Li Chen", "public_date": "2099-01-01",
             "observations": [{"id": "P0301040001", "target": "Cen X-3", "roll": -45.0,
                               "exposures": demo._exposures(orbit, CEN_X3["ra"], CEN_X3["dec"], "2019-05-02",
                                                            [(1000.0, None)], 0.5)}]},
        ],
    }


@dataclass(frozen=True)
class HxmtArchive:
    root: Path
    data_dir: Path
    settings: Settings

    def truth(self, exp_id: str) -> dict[str, Any]:
        path = next(self.root.glob(f"*/*/{exp_id}-*/SIM/truth.json"))
        return json.loads(path.read_text())

    def settings_with_cache(self, cache_dir: Path) -> Settings:
        return Settings({"data_dir": str(self.data_dir), "archive_dir": str(self.root),
                         "cache_dir": str(cache_dir), "workers": 2})


def build_archive(base: Path) -> HxmtArchive:
    root = base / "archive"
    simulate_archive(build_spec(document()), root, workers=2)
    data_dir = base / "xoda"
    settings = Settings({"data_dir": str(data_dir), "archive_dir": str(root), "workers": 2})
    ObservationIndex(data_dir / "hxmt_index.sqlite").rescan(root)
    return HxmtArchive(root, data_dir, settings)


@pytest.fixture(scope="session")
def hxmt_archive(tmp_path_factory) -> HxmtArchive:
    return build_archive(tmp_path_factory.mktemp("hxmt-pipeline"))


@pytest.fixture(scope="session")
def hxmt_instruments(hxmt_archive):
    return load_instruments(hxmt_archive.settings)


@pytest.fixture(scope="session")
def hxmt_engine(hxmt_archive, hxmt_instruments):
    modules = sorted({m for i in hxmt_instruments.values() for m in i.step_modules()})
    engine = Engine.from_settings(hxmt_archive.settings, preload=modules)
    yield engine
    engine.close()


def plan_of(instruments, instrument: str, product: str, **values: Any):
    ptype = instruments[instrument].products()[product]
    return ptype.plan(normalise(ptype.schema(), values))


def run_plan(engine: Engine, plan) -> dict[str, Any]:
    """Run a plan; the outputs by name as store products (asserting the run succeeded)."""
    result = engine.run(plan.targets)
    assert result.ok, [f"{f['unit']} {f['step']}: {f['message']}" for f in result.failures]
    return {o.name: result.products[o.node.key] for o in plan.outputs}
