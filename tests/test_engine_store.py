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
    assert not store.contains(key)  # a missing file leaves no entry claiming it is cached
    assert store.stats()["entries"] == 0
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


def test_product_files_no_entry_names_are_removed_after_a_day(tmp_path):
    """A writer killed between moving its file into place and indexing it leaves a file that
    is never served; a store opened later reclaims its space once it is a day old."""
    store = ProductStore(tmp_path / "cache", 10**9)
    kept = store.put_hdul(content_key("kept"), _hdul(), {"step": "s", "version": 1})
    orphan = kept.path.with_name(f"{content_key('crashed')}.0badc0de.fits")
    young = kept.path.with_name(f"{content_key('crashing now')}.00c0ffee.fits")
    for path in (orphan, young):
        path.write_bytes(kept.path.read_bytes())
    two_days_ago = time.time() - 2 * 24 * 3600
    for path in (orphan, kept.path):
        os.utime(path, (two_days_ago, two_days_ago))
    (store.directory / "last_orphan_sweep").unlink()      # the sweep is hourly: let it run now
    store.close()

    reopened = ProductStore(tmp_path / "cache", 10**9)
    assert not orphan.exists() and young.exists()
    assert reopened.get(content_key("kept")).path == kept.path       # indexed: kept and served
    later = kept.path.with_name(f"{content_key('later')}.0000dead.fits")
    later.write_bytes(b"x")
    os.utime(later, (two_days_ago, two_days_ago))
    reopened.close()
    ProductStore(tmp_path / "cache", 10**9).close()
    assert later.exists()                                  # swept less than an hour ago


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


def test_lock_files_are_removed_when_released(store):
    keys = [content_key(f"lock {i}") for i in range(20)]
    for key in keys:
        with store.lock(key):
            pass
        with store.try_lock(key) as acquired:
            assert acquired
        store.put_hdul(key, _hdul(10), {"step": "s", "version": 1})
        store.discard_staging(key)
    assert [p for p in (store.directory / "locks").rglob("*") if p.is_file()] == []


def _count_under_lock(directory, key, counter_path, rounds, barrier):
    store = ProductStore(directory, 10**9)
    barrier.wait()
    for _ in range(rounds):
        with store.lock(key):
            value = int(counter_path.read_text())
            counter_path.write_text(str(value + 1))


def test_lock_excludes_while_lock_files_come_and_go(tmp_path):
    # Removing a lock file on release must not let a waiter that opened the old file and a
    # newcomer that created a new one hold the lock at the same time.
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(4)
    key, counter_path = content_key("contended"), tmp_path / "counter"
    counter_path.write_text("0")
    procs = [ctx.Process(target=_count_under_lock,
                         args=(tmp_path / "c", key, counter_path, 300, barrier)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert counter_path.read_text() == "1200"


def test_a_write_survives_a_concurrent_removal_of_its_directory(store, monkeypatch):
    # diskcache removes a product's directory when its last file goes (eviction, a dropped
    # entry); another writer may have just created that directory for a new product.
    real_makedirs, removed, depth = os.makedirs, [], []

    def makedirs_then_lose_it(path, *args, **kwargs):
        depth.append(path)  # os.makedirs calls itself for missing parents
        try:
            real_makedirs(path, *args, **kwargs)
        finally:
            depth.pop()
        if "products" in str(path) and not removed and not depth:
            removed.append(path)
            os.removedirs(path)

    monkeypatch.setattr(os, "makedirs", makedirs_then_lose_it)
    key = content_key("racy directory")
    product = store.put_hdul(key, _hdul(), {"step": "s", "version": 1})
    assert removed and store.get(key).path == product.path


def test_a_pinned_product_outlives_its_eviction(store):
    key = content_key("pinned")
    product = store.put_hdul(key, _hdul(500), {"step": "s", "version": 1})
    with store.pins(content_key("consumer")) as pin:
        pinned = pin(product)
        store.delete(key)                       # evicted by another writer mid-step
        assert not product.path.exists() and store.get(key) is None
        with pinned.open() as hdul:
            assert len(hdul["DATA"].data) == 500
        folder = pinned.path.parent.parent
    assert not folder.exists()                  # the links go with the block
    with store.pins(content_key("consumer")) as pin, pytest.raises(FileNotFoundError):
        pin(product)                            # gone before it was pinned: read it again
    assert list((store.directory / "staging").iterdir()) == []
