"""Shared fixtures.

`XODA_TEST_COUNTERS` is set once per session, before any worker process exists, because
forked workers inherit the environment of the forkserver, which starts on first use.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from dataserver import Engine, Settings
from tests.engine_instrument import COUNTERS_ENV

REPO = Path(__file__).resolve().parents[1]
REAL_DATA = REPO.parent / "shared" / "data" / "real"


def pytest_configure(config):
    if COUNTERS_ENV not in os.environ:
        base = Path(config.rootpath) / ".build" / "test-counters" / str(os.getpid())
        base.mkdir(parents=True, exist_ok=True)
        os.environ[COUNTERS_ENV] = str(base)


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
