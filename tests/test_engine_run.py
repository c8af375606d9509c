"""The engine on the local executor, proved with the test instrument's call counters."""
import multiprocessing
import os
import threading

import numpy as np
import pytest

from dataserver import Engine, Settings, step
from tests import engine_instrument as ti
from tests.engine_instrument import read_calls

UNITS = ["U1", "U2", "U3", "U4"]


def _counts(product):
    with product.open() as hdul:
        return np.asarray(hdul["SPECTRUM"].data["COUNTS"])


def test_cold_then_identical_query_computes_nothing(engine, counters):
    spectra, total = ti.plan_nodes(UNITS)
    events = []
    cold = engine.run([total], on_event=events.append)
    assert cold.ok and cold.counts() == {"computed": 13, "restored": 0, "failed": 0}
    assert sorted(read_calls(counters, "calibrate")) == UNITS
    assert {(e["unit"], e["step"]) for e in events if e["unit"]} == {
        (u, s) for u in UNITS for s in ("engine_instrument.calibrate", "engine_instrument.screen",
                                        "engine_instrument.extract")}
    assert all(set(e) >= {"unit", "step", "state", "message", "time", "key"} for e in events)
    merged = cold.products[total.key]
    assert merged.meta["units"] == 4

    engine.store.reset_stats()
    warm = engine.run([total])
    assert warm.counts() == {"computed": 0, "restored": 13, "failed": 0}
    assert len(read_calls(counters, "calibrate")) == 4 and len(read_calls(counters, "merge")) == 1
    stats = engine.store.stats()
    assert stats["computed"] == 0 and stats["hits"] == 1 and stats["misses"] == 0
    assert np.array_equal(_counts(warm.products[total.key]), _counts(merged))


def test_overlapping_query_computes_only_new_units(engine, counters):
    engine.run([ti.plan_nodes(UNITS)[1]])
    more = UNITS + ["U5", "U6"]
    result = engine.run([ti.plan_nodes(more)[1]])
    assert result.ok
    assert sorted(read_calls(counters, "calibrate")) == sorted(more)
    assert read_calls(counters, "extract").count("U5") == 1
    assert len(read_calls(counters, "merge")) == 2
    computed = {(e["unit"], e["step"]) for e in result.events if e["state"] == "computed"}
    assert {u for u, _ in computed} == {"U5", "U6", None}


def test_a_bumped_version_recomputes_that_step_and_downstream_only(engine, counters):
    engine.run([ti.plan_nodes(UNITS)[1]])
    result = engine.run([ti.plan_nodes(UNITS, screen_step=ti.screen_v2)[1]])
    assert result.ok
    assert len(read_calls(counters, "calibrate")) == 4          # upstream restored
    assert len(read_calls(counters, "screen")) == 8             # bumped step recomputed
    assert len(read_calls(counters, "extract")) == 8            # downstream recomputed
    assert len(read_calls(counters, "merge")) == 2


def test_a_corrupted_cache_file_is_recomputed(engine, counters):
    spectra, total = ti.plan_nodes(UNITS)
    first = engine.run([total])
    expected = _counts(first.products[total.key])
    path = first.products[total.key].path
    path.write_bytes(path.read_bytes()[:-100])  # truncated on disk
    again = engine.run([total])
    assert again.ok and engine.store.stats()["corrupt"] == 1
    assert len(read_calls(counters, "merge")) == 2 and len(read_calls(counters, "calibrate")) == 4
    assert np.array_equal(_counts(again.products[total.key]), expected)


def test_concurrent_identical_queries_in_threads_compute_each_unit_once(engine, counters):
    total = ti.plan_nodes(UNITS, work_s=0.05)[1]
    results = []
    threads = [threading.Thread(target=lambda: results.append(engine.run([total]))) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(results) == 20 and all(r.ok for r in results)
    assert sorted(read_calls(counters, "calibrate")) == UNITS
    assert len(read_calls(counters, "merge")) == 1
    assert sum(r.counts()["computed"] for r in results) == 13


def _run_in_process(data_dir, barrier, queue):
    engine = Engine.from_settings(Settings({"data_dir": data_dir, "workers": 1}),
                                  preload=["tests.engine_instrument"])
    barrier.wait()
    result = engine.run([ti.plan_nodes(UNITS, work_s=0.05)[1]])
    queue.put((result.ok, result.counts()["computed"]))
    engine.close()


def test_concurrent_identical_queries_in_processes_compute_each_unit_once(settings, counters):
    ctx = multiprocessing.get_context("spawn")
    barrier, queue = ctx.Barrier(20), ctx.Queue()
    procs = [ctx.Process(target=_run_in_process, args=(str(settings.data_path), barrier, queue))
             for _ in range(20)]
    for p in procs:
        p.start()
    outcomes = [queue.get(timeout=300) for _ in procs]
    for p in procs:
        p.join(60)
    assert all(ok for ok, _ in outcomes)
    assert sum(n for _, n in outcomes) == 13
    assert sorted(read_calls(counters, "calibrate")) == UNITS
    assert len(read_calls(counters, "merge")) == 1


def test_a_failing_unit_is_reported_and_the_others_are_reused_on_retry(engine, counters):
    (counters / "fail-U3").touch()
    total = ti.plan_nodes(UNITS)[1]
    first = engine.run([total])
    assert not first.ok and total.key not in first.products
    [failure] = first.failures
    assert failure["unit"] == "U3" and failure["step"] == "engine_instrument.calibrate"
    assert failure["message"].startswith("RuntimeError: detector data of U3 unreadable")
    assert {e["unit"] for e in first.events if e["state"] == "computed"} == {"U1", "U2", "U4"}
    merge_event = [e for e in first.events if e["step"] == "engine_instrument.merge"][0]
    assert merge_event["state"] == "failed" and "U3" in merge_event["message"]

    (counters / "fail-U3").unlink()
    retry = engine.run([total])
    assert retry.ok
    assert sorted(read_calls(counters, "extract")) == UNITS  # U1, U2, U4 not recomputed
    assert {e["unit"] for e in retry.events if e["state"] == "computed"} == {"U3", None}


def test_a_step_exception_names_its_unit(engine, counters):
    result = engine.run([ti.plan_nodes(UNITS, crash={"U2": "raise"})[1]])
    assert [(f["unit"], f["message"]) for f in result.failures] == [
        ("U2", "ValueError: calibration table missing for U2")]


def test_a_killed_worker_fails_only_its_unit_and_leaves_no_entry(engine, counters):
    spectra, total = ti.plan_nodes(UNITS, crash={"U2": "kill"})
    result = engine.run([total])
    [failure] = result.failures
    assert failure["unit"] == "U2" and "killed by SIGKILL" in failure["message"]
    assert {e["unit"] for e in result.events if e["state"] == "computed"} == {"U1", "U3", "U4"}
    killed = [n for n in ti.plan_nodes(UNITS, crash={"U2": "kill"})[0]][1].input_nodes()[0].input_nodes()[0]
    assert killed.unit == "U2" and not engine.store.contains(killed.key)
    assert list((engine.store.directory / "staging").iterdir()) == []
    for unit_spectrum in spectra:
        if unit_spectrum.unit != "U2":
            assert engine.store.contains(unit_spectrum.key)


class _EvictTargetOnce:
    """Wraps an executor: counts tasks, and drops the target's product once, just after it
    was computed (as a concurrent writer's eviction would)."""

    def __init__(self, inner, store, target_key):
        self.inner, self.store, self.target_key = inner, store, target_key
        self.parallelism = inner.parallelism
        self.submitted = []

    def submit(self, task):
        self.submitted.append(task["target"])
        future = self.inner.submit(task)
        if task["target"] == self.target_key and self.submitted.count(self.target_key) == 1:
            future.result()
            self.store.delete(self.target_key)
        return future

    def close(self):
        self.inner.close()


def test_a_target_lost_after_computing_is_recomputed_alone(engine, counters):
    spectra, total = ti.plan_nodes(UNITS)
    wrapper = _EvictTargetOnce(engine.executor, engine.store, total.key)
    engine.executor = wrapper
    result = engine.run([total])
    assert result.ok and total.key in result.products
    assert len(read_calls(counters, "merge")) == 2 and len(read_calls(counters, "calibrate")) == 4
    # One task per node, plus one more for the lost target: its worker restores the inputs.
    assert len(wrapper.submitted) == 13 + 1


_RETURNED = []


@step(version=1, name="test_engine_run.reuse_events", inputs=["events"])
def reuse_events(events):
    hdul = events.open()  # a step may hand back an opened (memory-mapped) input
    hdul[0].header["REUSED"] = True
    _RETURNED.append(hdul)
    return hdul


def test_the_worker_closes_what_a_step_returns(tmp_path, counters):
    from dataserver.steps import task_spec
    from dataserver.worker import WorkerContext, run_task

    _RETURNED.clear()
    node = reuse_events.node(unit="U1", events=ti.calibrate.node(unit="U1", external={"unit": "U1"}))
    context = WorkerContext(str(tmp_path / "cache"), 10**9, None)
    assert run_task(task_spec(node), context)["state"] == "done"
    [hdul] = _RETURNED
    # An open memory map would hold a file descriptor (and an evicted file's space) for the
    # worker's lifetime, a few hundred tasks.
    assert hdul._file is None or hdul._file.closed


def test_an_input_evicted_before_the_step_reads_it_is_computed_again(tmp_path, counters,
                                                                      monkeypatch):
    from dataserver import store as store_module
    from dataserver.steps import task_spec
    from dataserver.worker import WorkerContext, open_store, run_task

    spectra, _ = ti.plan_nodes(["U1"])
    extract = spectra[0]
    screen = extract.input_nodes()[0]
    context = WorkerContext(str(tmp_path / "cache"), 10**9, None)
    assert run_task(task_spec(screen), context)["state"] == "done"
    store = open_store(context.cache_dir, context.cache_size_bytes)
    real_link, evicted = os.link, []

    def evict_first(source, target):
        if not evicted:                         # another writer evicts it just before
            evicted.append(source)
            store.delete(screen.key)
        return real_link(source, target)

    monkeypatch.setattr(store_module.os, "link", evict_first)
    result = run_task(task_spec(extract), context)
    assert result["state"] == "done" and evicted
    assert [e["state"] for e in result["events"] if e["key"] == screen.key] == ["restored", "computed"]
    assert len(read_calls(counters, "screen")) == 2 and store.contains(extract.key)
