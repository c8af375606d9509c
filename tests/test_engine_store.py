"""The product store: atomic writes, verified reads, eviction, single flight, statistics."""
import multiprocessing
import os
import signal
import time

import numpy as np
import pytest
from astropy.io import fits

from dataserver.keys import content_key
from dataserver.store import ProductStore


def _hdul(n: int = 1000, seed: int = 0) -> fits.HDUList:
    data = np.random.default_rng(seed).normal(size=n)
    return fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(
        [fits.Column(name="X", format="D", array=data)], name="DATA")])


@pytest.fixture
def store(tmp_path):
    s = ProductStore(tmp_path / "cache", 10**9)
    yield s
    s.close()


def test_round_trip_with_record_and_checksum(store):
    key = content_key("a")
    product = store.put_hdul(key, _hdul(), {"step": "s", "version": 1, "meta": {"n": 1000}})
    again = store.get(key)
    assert again.path == product.path and again.meta == {"n": 1000}
    assert again.record["size"] == product.path.stat().st_size and len(again.record["sha256"]) == 64
    with again.open() as hdul:
        assert len(hdul["DATA"].data) == 1000
    assert store.stats()["hits"] == 1 and store.stats()["stored"] == 1


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete"])
def test_corrupt_or_missing_file_is_dropped_never_served(store, damage):
    key = content_key(damage)
    path = store.put_hdul(key, _hdul(), {"step": "s", "version": 1}).path
    if damage == "flip":
        with open(path, "r+b") as handle:
            handle.seek(5000)
            byte = handle.read(1)
            handle.seek(5000)
            handle.write(bytes([byte[0] ^ 0xFF]))
    elif damage == "truncate":
        os.truncate(path, path.stat().st_size // 2)
    else:
        path.unlink()
    assert store.get(key) is None
    assert not store.contains(key) or damage == "delete"
    if damage != "delete":
        assert store.stats()["corrupt"] == 1


def test_a_failed_write_leaves_no_entry_and_no_staging_file(store, tmp_path):
    small = ProductStore(tmp_path / "small", size_limit_bytes=20_000)
    key = content_key("too big")
    with pytest.raises(OSError, match="larger than the cache size limit"):
        small.put_hdul(key, _hdul(50_000), {"step": "s", "version": 1})
    assert small.get(key) is None
    assert list((tmp_path / "small" / "staging").iterdir()) == []
    small.close()


def test_staging_files_are_not_entries(store):
    key = content_key("half written")
    staged = store.staging_path(key)
    staged.write_bytes(b"SIMPLE  =                    T")  # a writer died here
    assert not store.contains(key) and store.get(key) is None
    assert store.discard_staging(key) == 1 and not staged.exists()


def test_size_limit_evicts_least_recently_used(tmp_path):
    store = ProductStore(tmp_path / "lru", size_limit_bytes=400_000)
    keys = [content_key(i) for i in range(12)]
    for i, key in enumerate(keys):
        store.put_hdul(key, _hdul(5000, seed=i), {"step": "s", "version": 1})  # ~43 kB each
        store.get(keys[0])  # keep the first one recently used
    stats = store.stats()
    assert stats["size_bytes"] <= 400_000
    assert store.get(keys[0]) is not None and store.get(keys[-1]) is not None
    assert store.get(keys[1]) is None
    store.close()


def _compute_once(directory, key, log_path, barrier):
    store = ProductStore(directory, 10**9)
    barrier.wait()
    with store.lock(key):
        if store.get(key) is None:
            with open(log_path, "a") as handle:
                handle.write("computed\n")
            time.sleep(0.2)
            store.put_hdul(key, _hdul(), {"step": "s", "version": 1})


def test_single_flight_across_processes(tmp_path):
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(8)
    key, log_path = content_key("shared"), tmp_path / "log"
    procs = [ctx.Process(target=_compute_once, args=(tmp_path / "c", key, log_path, barrier))
             for _ in range(8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    assert log_path.read_text().count("computed") == 1


def _hold_lock_and_die(directory, key, ready):
    store = ProductStore(directory, 10**9)
    with store.lock(key):
        ready.set()
        os.kill(os.getpid(), signal.SIGKILL)


def test_lock_of_a_killed_holder_is_released(tmp_path):
    ctx = multiprocessing.get_context("fork")
    ready = ctx.Event()
    key = content_key("orphan")
    proc = ctx.Process(target=_hold_lock_and_die, args=(tmp_path / "c", key, ready))
    proc.start()
    assert ready.wait(20)
    proc.join(20)
    assert proc.exitcode == -signal.SIGKILL
    store = ProductStore(tmp_path / "c", 10**9)
    with store.try_lock(key) as acquired:
        assert acquired
    store.close()


def test_statistics_count_hits_and_misses(store):
    key = content_key("stats")
    assert store.get(key) is None
    store.put_hdul(key, _hdul(), {"step": "s", "version": 1})
    store.get(key)
    store.get(key)
    stats = store.stats()
    assert (stats["hits"], stats["misses"], stats["entries"]) == (2, 1, 1)
    store.reset_stats()
    assert store.stats()["hits"] == 0
