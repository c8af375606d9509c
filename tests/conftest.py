"""Shared fixtures.

`XODA_TEST_COUNTERS` is set once per session, before any worker process exists, because
forked workers inherit the environment of the forkserver, which starts on first use.

Real instrument products live outside the repository, in `../shared/data/real/`; tests that
read them are marked `real_data`. Without them such a test is skipped with the reason, or
fails under CI (`CI` set), where they must run.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from dataserver import Engine, Settings
from tests.engine_instrument import COUNTERS_ENV

REPO = Path(__file__).resolve().parents[1]
REAL_DATA_ENV = "XODA_REAL_DATA"


def _real_data_dir() -> Path:
    """`$XODA_REAL_DATA`, else `../shared/data/real` beside this checkout, else beside the
    repository it was cloned from (a fresh clone in a temporary directory)."""
    candidates = [Path(os.environ[REAL_DATA_ENV])] if os.environ.get(REAL_DATA_ENV) else []
    candidates.append(REPO.parent / "shared" / "data" / "real")
    origin = subprocess.run(["git", "-C", str(REPO), "config", "--get", "remote.origin.url"],
                            capture_output=True, text=True).stdout.strip()
    if origin and "://" not in origin and ":" not in origin.split("/")[0]:
        candidates.append(Path(origin).resolve().parent / "shared" / "data" / "real")
    return next((c for c in candidates if c.is_dir()), candidates[0])


REAL_DATA = _real_data_dir()


def pytest_configure(config):
    config.addinivalue_line("markers", "real_data: reads the real instrument products in "
                            "../shared/data/real")
    if COUNTERS_ENV not in os.environ:
        base = Path(config.rootpath) / ".build" / "test-counters" / str(os.getpid())
        base.mkdir(parents=True, exist_ok=True)
        os.environ[COUNTERS_ENV] = str(base)


def pytest_runtest_setup(item):
    if item.get_closest_marker("real_data") and not REAL_DATA.is_dir():
        reason = f"real instrument products not found at {REAL_DATA} (set {REAL_DATA_ENV})"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture
def counters() -> Path:
    """The call-counter directory of the engine test instrument, emptied for this test."""
    directory = Path(os.environ[COUNTERS_ENV])
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    return directory


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings({"data_dir": str(tmp_path / "xoda"), "workers": 2})


@pytest.fixture
def engine(settings):
    eng = Engine.from_settings(settings, preload=["tests.engine_instrument"])
    yield eng
    eng.close()
