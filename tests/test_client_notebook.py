"""The example notebook `docs/hxmt_crab.ipynb` runs, cell by cell, against a live server on a
small simulated HXMT archive (search, spectrum with fit, light curves)."""
from __future__ import annotations

import importlib

import pytest

from tests.dispatcher_support import REPO, LiveServer

NOTEBOOK = REPO / "docs" / "hxmt_crab.ipynb"


def _hxmt_he():
    """The HXMT HE plugin class, or None when it cannot be imported."""
    try:
        module = importlib.import_module("plugins.hxmt_he")
    except ImportError:
        return None
    from dataserver import Instrument

    return next((value for value in vars(module).values() if isinstance(value, type)
                 and issubclass(value, Instrument) and getattr(value, "name", "") == "hxmt_he"), None)


pytestmark = pytest.mark.skipif(_hxmt_he() is None, reason="HXMT plugins not installed")


def test_the_example_notebook_runs_against_a_live_server(tmp_path, tmp_path_factory,
                                                          monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    from dataserver import Settings
    from dataserver.names import NameResolver
    from plugins.hxmt.catalog import ObservationIndex
    from tests.hxmt_support import build_small_archive

    plugin = _hxmt_he()
    archive = build_small_archive(tmp_path_factory.getbasetemp())
    index = tmp_path / "hxmt_index.sqlite"
    settings = Settings({"data_dir": str(tmp_path / "xoda")})
    report = ObservationIndex(index, NameResolver.from_settings(settings)).rescan(archive)
    assert not report.errors
    server = LiveServer(tmp_path / "xoda", tmp_path / "server.log", workers=2,
                        env={"XODA_ARCHIVE_DIR": str(archive), "XODA_HXMT_INDEX": str(index),
                             # Served even before the entry points are (re)installed.
                             "XODA_EXTRA_INSTRUMENTS": f"{plugin.__module__}:{plugin.__name__}"}).start()
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("XODA_URL", server.url)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XODA_TOKEN", raising=False)
    monkeypatch.delenv("XODA_CLIENT_CACHE", raising=False)
    try:
        notebook = nbformat.read(NOTEBOOK, as_version=4)
        NotebookClient(notebook, timeout=600, kernel_name="python3",
                       resources={"metadata": {"path": str(tmp_path)}}).execute()
    finally:
        server.stop()
    text = "\n".join(output.get("text", "") for cell in notebook.cells
                     for output in cell.get("outputs", []) if output.get("output_type") == "stream")
    assert "photon index" in text and "(injected: 2.1)" in text
    index_line = next(line for line in text.splitlines() if line.startswith("photon index"))
    assert abs(float(index_line.split()[2]) - 2.1) < 0.1
    assert any(p.suffix for p in (tmp_path / "crab_he").iterdir())
    images = sum(1 for cell in notebook.cells for output in cell.get("outputs", [])
                 if "image/png" in output.get("data", {}))
    assert images == 3                                   # spectrum, fit, light curve
