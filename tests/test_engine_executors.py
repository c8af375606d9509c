"""The same results from the local, dask and docker executors."""
import os
import shutil
import subprocess

import numpy as np
import pytest

from dataserver import Engine, ProductStore, Settings
from dataserver.worker import WorkerContext
from tests import engine_instrument as ti
from tests.engine_instrument import COUNTERS_ENV, read_calls

UNITS = ["U1", "U2", "U3"]


def _docker_unavailable() -> str | None:
    if shutil.which("docker") is None:
        return "the docker client is not installed"
    try:
        import docker
        client = docker.from_env()
        client.ping()
    except Exception as exc:  # noqa: BLE001
        return f"no Docker engine answers ({exc}); `make test` starts dockerd when run as root"
    try:
        client.images.get("xoda-worker:latest")
    except Exception:  # noqa: BLE001
        return "image xoda-worker:latest is missing; build it with `python -m dataserver.docker.image`"
    return None


def _spectrum(result, node):
    with result.products[node.key].open() as hdul:
        return np.asarray(hdul["SPECTRUM"].data["COUNTS"])


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    settings = Settings({"data_dir": str(tmp_path_factory.mktemp("ref")), "workers": 2})
    engine = Engine.from_settings(settings, preload=["tests.engine_instrument"])
    total = ti.plan_nodes(UNITS)[1]
    counts = _spectrum(engine.run([total]), total)
    engine.close()
    return counts


def _check_engine(engine, counters, reference):
    total = ti.plan_nodes(UNITS)[1]
    cold = engine.run([total])
    assert cold.ok, cold.failures
    assert np.array_equal(_spectrum(cold, total), reference)
    assert sorted(read_calls(counters, "calibrate")) == UNITS
    warm = engine.run([total])
    assert warm.counts()["computed"] == 0
    failing = engine.run([ti.plan_nodes(UNITS, crash={"U2": "raise"})[1]])
    assert [(f["unit"], f["message"]) for f in failing.failures] == [
        ("U2", "ValueError: calibration table missing for U2")]


def test_dask_executor_gives_the_same_results(tmp_path, counters, reference):
    settings = Settings({"data_dir": str(tmp_path / "dask"), "workers": 2, "executor": "dask"})
    engine = Engine.from_settings(settings)
    try:
        assert engine.executor.parallelism == 2
        _check_engine(engine, counters, reference)
    finally:
        engine.close()


@pytest.mark.docker
def test_docker_executor_gives_the_same_results(tmp_path, counters, reference):
    reason = _docker_unavailable()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"docker executor must be tested in CI: {reason}")
        pytest.skip(reason)
    from dataserver.executors.docker import DockerExecutor

    settings = Settings({"data_dir": str(tmp_path / "docker"), "workers": 2})
    store = ProductStore(settings.cache_path, 10**9)
    context = WorkerContext(str(settings.cache_path), store.size_limit_bytes, None)
    executor = DockerExecutor(context, image="xoda-worker:latest", code_dir=None, workers=2,
                              state_dir=settings.data_path,
                              environment={COUNTERS_ENV: str(counters)},
                              extra_volumes={str(counters): {"bind": str(counters), "mode": "rw"}})
    engine = Engine(store, executor)
    try:
        _check_engine(engine, counters, reference)
        labels = subprocess.run(["docker", "ps", "-a", "--filter", "label=xoda.step", "-q"],
                                capture_output=True, text=True).stdout.split()
        assert labels == []  # every container was removed
    finally:
        engine.close()


def test_container_entry_point_reports_an_infrastructure_error_as_a_result(tmp_path):
    # A worker that cannot even open the store must still write a result (else the docker
    # executor falls back on the container's log tail, a traceback with server paths).
    import json

    from dataserver.steps import task_spec
    from dataserver.worker import main

    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    total = ti.plan_nodes(["U1"])[1]
    task_path, result_path = tmp_path / "t.json", tmp_path / "r.json"
    task_path.write_text(json.dumps({"task": task_spec(total), "context": WorkerContext(
        str(blocker / "cache"), 10**9, None).to_dict()}))
    assert main([str(task_path), str(result_path)]) == 0
    result = json.loads(result_path.read_text())
    assert result["state"] == "failed"
    [event] = result["events"]
    assert event["key"] == total.key and event["state"] == "failed"
    assert event["message"].startswith("worker error: NotADirectoryError")
    assert str(tmp_path) not in event["message"] and "Traceback" not in event["message"]
