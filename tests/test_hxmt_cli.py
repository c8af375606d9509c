"""`xoda sim`: sky-model files in, archive and index out; bad input exits 2 naming the field."""
import json

import jsonschema
import pytest

from client.cli import main
from client.commands.sim import stale_reason
from plugins.hxmt.archive import Archive
from plugins.hxmt.catalog import ObservationIndex
from plugins.hxmt.simulate import SIMULATOR_VERSION
from plugins.hxmt.skymodel import load_schema

SKY = """
seed: 3
sources:
  - name: Her X-1
    ra: 254.45755
    dec: 35.34236
    spectrum: {model: cutoffpl, norm: 0.3, index: 0.9, ecut: 20}
    variability: {type: periodic, period: 1.2378, pulsed_fraction: 0.5, profile: sine}
proposals:
  - id: P0101400
    type: GO
    pi: someone
    public_date: "2100-01-01"
    observations:
      - target: her x-1
        exposures:
          - {start: "2018-03-01T10:00:00", duration: 30, payloads: [ME, LE]}
"""


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("XODA_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("XODA_WORKERS", "1")
    return tmp_path


def test_sim_builds_an_archive_and_its_index(env, capsys):
    (env / "sky.yaml").write_text(SKY)
    assert main(["sim", str(env / "sky.yaml"), "-o", str(env / "arch")]) == 0
    out = capsys.readouterr().out
    assert "1 exposures" in out and "indexed 1 observations" in out
    exposures = Archive(env / "arch").exposures()
    assert [e.exp_id for e in exposures] == ["P010140000101"] and exposures[0].payloads == ("ME", "LE")
    rows = ObservationIndex(env / "arch" / "hxmt_index.sqlite").search({"name": "Her X-1"})["rows"]
    assert rows == []                                       # proprietary until 2100: not for anonymous
    with_owner = ObservationIndex(env / "arch" / "hxmt_index.sqlite").search(
        {"name": "Her X-1", "pi": "someone"}, __import__("dataserver").Identity("someone"))["rows"]
    assert [r["obs_id"] for r in with_owner] == ["P0101400001"]


def test_bad_sky_models_exit_2_naming_the_field(env, capsys):
    (env / "bad.yaml").write_text(SKY.replace("index: 0.9", "index: hard"))
    assert main(["sim", str(env / "bad.yaml"), "-o", str(env / "arch")]) == 2
    assert "sources[0].spectrum.index" in capsys.readouterr().err
    assert not (env / "arch").exists()
    assert main(["sim", str(env / "missing.yaml")]) == 2
    assert main(["sim"]) == 2


def test_demo_spec_and_if_absent(env, capsys):
    assert main(["sim", "--demo", "--print-spec"]) == 0
    document = json.loads(capsys.readouterr().out)
    jsonschema.validate(document, load_schema())
    assert len(document["proposals"]) == 5
    # An archive already present is kept by --if-absent and refused without --force.
    (env / "sky.yaml").write_text(SKY)
    archive = env / "data" / "archive"
    assert main(["sim", str(env / "sky.yaml")]) == 0
    capsys.readouterr()
    assert main(["sim", "--demo", "--if-absent"]) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert main(["sim", "--demo"]) == 2
    assert "use --force" in capsys.readouterr().err
    assert [e.exp_id for e in Archive(archive).exposures()] == ["P010140000101"]
    # An archive of another simulator version is stale: --if-absent rebuilds it.
    assert stale_reason(archive) is None
    [truth_path] = archive.glob("*/*/*/SIM/truth.json")
    truth = json.loads(truth_path.read_text())
    truth_path.write_text(json.dumps({**truth, "simulator_version": 1}))
    assert stale_reason(archive) == f"it was written by simulator_version 1, this is {SIMULATOR_VERSION}"
