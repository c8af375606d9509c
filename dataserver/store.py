"""Content-addressed product store on diskcache.

A product is one FITS file plus a small JSON record (the step's metadata, its name and
version, the file's size and sha256). Both live in one diskcache row: the FITS file is
managed by diskcache (so its size counts towards the size limit and eviction removes it) and
the record is the row's value. Writes go to a staging file first and are renamed into place
inside the row's transaction, so a reader never sees a partial product; every read verifies
the checksum and drops a corrupt or truncated entry instead of serving it.

Single flight: `lock(key)` is an exclusive `flock` on a per-key lock file, which the kernel
releases when its holder dies, so a killed worker never leaves a key locked.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

import diskcache
from astropy.io import fits

log = logging.getLogger(__name__)

# diskcache row mode for our products: a FITS file plus the JSON record in the value column.
MODE_PRODUCT = 16
# Leftovers of dead writers (staging files, product files never indexed) are removed when
# this old: no live writer keeps a file that long between writing and indexing it.
_STAGING_MAX_AGE_S = 24 * 3600
# The product tree is searched for unindexed files at most this often per cache.
_ORPHAN_SWEEP_INTERVAL_S = 3600
_MOVE_ATTEMPTS = 20


@dataclass(frozen=True)
class Product:
    """A verified product in the store."""

    key: str
    path: Path
    record: Mapping[str, Any]

    @property
    def meta(self) -> Mapping[str, Any]:
        return self.record.get("meta", {})

    @property
    def step(self) -> str:
        return self.record.get("step", "")

    @property
    def version(self) -> Any:
        return self.record.get("version")

    def open(self, memmap: bool = True) -> fits.HDUList:
        """Open the FITS file read-only (memory-mapped by default); use as a context manager."""
        return fits.open(self.path, mode="readonly", memmap=memmap, lazy_load_hdus=True)


@dataclass(frozen=True)
class _Staged:
    path: Path
    record_json: str
    size: int


@dataclass(frozen=True)
class _Entry:
    path: Path
    record: dict


class ProductDisk(diskcache.Disk):
    """diskcache Disk that moves staged FITS files into the cache atomically."""

    def filename(self, key=diskcache.core.UNKNOWN, value=diskcache.core.UNKNOWN):
        if isinstance(value, _Staged) and isinstance(key, str):
            # Content key in the name keeps the tree readable; the random suffix keeps a
            # replaced entry's old file distinct from the new one until diskcache removes it.
            name = f"{key[:2]}/{key[2:4]}/{key}.{uuid.uuid4().hex[:8]}.fits"
            return name, os.path.join(self._directory, name)
        return super().filename(key, value)

    def store(self, value, read, key=diskcache.core.UNKNOWN):
        if isinstance(value, _Staged):
            filename, full_path = self.filename(key, value)
            for attempt in range(_MOVE_ATTEMPTS):
                os.makedirs(os.path.dirname(full_path), exist_ok=True)
                try:
                    os.replace(value.path, full_path)
                    break
                except FileNotFoundError:
                    # diskcache removes a directory when its last file goes (eviction, a
                    # dropped entry), possibly just after we created it: create it again.
                    if attempt == _MOVE_ATTEMPTS - 1 or not os.path.exists(value.path):
                        raise
            return value.size, MODE_PRODUCT, filename, value.record_json
        return super().store(value, read, key=key)

    def fetch(self, mode, filename, value, read):
        if mode == MODE_PRODUCT:
            return _Entry(Path(self._directory) / filename, json.loads(value))
        return super().fetch(mode, filename, value, read)


def _sha256_file(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


class ProductStore:
    """The product cache shared by the engine, its workers and the dispatcher."""

    def __init__(self, directory: str | os.PathLike, size_limit_bytes: int = 50 * 10**9):
        self.directory = Path(directory)
        self.size_limit_bytes = int(size_limit_bytes)
        self._staging = self.directory / "staging"
        self._locks = self.directory / "locks"
        self._staging.mkdir(parents=True, exist_ok=True)
        self._locks.mkdir(parents=True, exist_ok=True)
        self._cache = diskcache.Cache(str(self.directory / "products"), disk=ProductDisk,
                                      size_limit=self.size_limit_bytes,
                                      eviction_policy="least-recently-used",
                                      cull_limit=0, timeout=120)
        # Counters live apart from the products so that eviction can never drop them.
        self._counters = diskcache.Cache(str(self.directory / "counters"), timeout=120)
        self._remove_stale_staging()
        self._remove_unindexed_products()

    def close(self) -> None:
        self._cache.close()
        self._counters.close()

    def __getstate__(self) -> dict:
        return {"directory": str(self.directory), "size_limit_bytes": self.size_limit_bytes}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["directory"], state["size_limit_bytes"])

    # ---- reading -------------------------------------------------------------------------
    def contains(self, key: str) -> bool:
        """Whether an entry exists (index only; `get` verifies it)."""
        return key in self._cache

    def get(self, key: str) -> Product | None:
        """The verified product for `key`, or None (missing, or corrupt and now dropped)."""
        try:
            entry = self._cache.get(key, retry=True)
        except OSError:
            entry = None
        if not isinstance(entry, _Entry):
            self._count("misses")
            return None
        record = entry.record
        try:
            size = entry.path.stat().st_size
            intact = size == record.get("size") and _sha256_file(entry.path) == record.get("sha256")
        except FileNotFoundError:
            # Evicted or replaced between the index read and the file read (then the row is
            # gone or new), or removed from outside (then the row is dangling: drop it).
            self._drop_if_unchanged(key, entry.path)
            self._count("misses")
            return None
        if not intact:
            log.warning("product %s (%s) failed its checksum; dropping it", key, record.get("step"))
            self._drop_if_unchanged(key, entry.path)
            self._count("corrupt")
            self._count("misses")
            return None
        self._count("hits")
        return Product(key, entry.path, record)

    def _drop_if_unchanged(self, key: str, path: Path) -> None:
        with self._cache.transact(retry=True):
            current = self._cache.get(key)
            if isinstance(current, _Entry) and current.path == path:
                self._cache.delete(key, retry=True)

    # ---- writing -------------------------------------------------------------------------
    def staging_path(self, key: str) -> Path:
        """A fresh temporary file path on the cache's file system for building `key`."""
        return self._staging / f"{key}.{uuid.uuid4().hex}.part"

    def put_file(self, key: str, staged: Path, record: Mapping[str, Any]) -> Product:
        """Move a completely written staging file into the store under `key`."""
        staged = Path(staged)
        size = staged.stat().st_size
        full_record = dict(record, size=size, sha256=_sha256_file(staged), stored=time.time())
        self._cache.set(key, _Staged(staged, json.dumps(full_record, sort_keys=True), size),
                        retry=True)
        self._count("stored")
        self._evict(keep=key)
        entry = self._cache.get(key, retry=True)
        if not isinstance(entry, _Entry):
            raise OSError(errno.EIO, f"product {key} was evicted as soon as it was stored: "
                          f"it is larger than the cache size limit ({self.size_limit_bytes} bytes)")
        return Product(key, entry.path, entry.record)

    def _evict(self, keep: str) -> None:
        """Drop least recently used products, one at a time, until the cache fits its limit.

        diskcache's own culling removes entries in batches (up to ten, or `cull_limit` per
        write), which in a cache of a few large products can evict the product just stored;
        here the newest entry goes only if it alone exceeds the limit.
        """
        while self._cache.volume() > self.size_limit_bytes:
            # The Cache table's access_time is what diskcache's LRU policy maintains.
            row = self._cache._sql("SELECT key FROM Cache WHERE key != ? ORDER BY access_time "
                                   "LIMIT 1", (keep,)).fetchone()
            victim = row[0] if row else keep
            log.info("evicting product %s to keep the cache under %d bytes", victim,
                     self.size_limit_bytes)
            self._cache.delete(victim, retry=True)
            if victim == keep:
                break

    def put_hdul(self, key: str, hdul: fits.HDUList, record: Mapping[str, Any]) -> Product:
        staged = self.staging_path(key)
        try:
            hdul.writeto(staged, output_verify="exception")
            return self.put_file(key, staged, record)
        finally:
            # Normally already moved into the cache; this removes it if anything failed.
            staged.unlink(missing_ok=True)

    def delete(self, key: str) -> bool:
        return bool(self._cache.delete(key, retry=True))

    def discard_staging(self, key: str) -> int:
        """Remove staging files of `key` left by a dead writer (only if nobody holds its lock)."""
        with self.try_lock(key) as acquired:
            if not acquired:
                return 0
            removed = 0
            for path in self._staging.glob(f"{key}.*.part"):
                path.unlink(missing_ok=True)
                removed += 1
            for folder in self._staging.glob(f"{key}.*.pins"):
                shutil.rmtree(folder, ignore_errors=True)
            return removed

    @contextlib.contextmanager
    def pins(self, key: str) -> Iterator[Any]:
        """For computing `key`: a function `pin(product) -> Product` whose results stay
        readable until the block ends, even if the cache evicts or drops the originals
        meanwhile: each is a hard link (same file system, no copy) in a private folder of the
        staging area. `pin` raises FileNotFoundError if the product went since it was read:
        read it again.
        """
        folder = self._staging / f"{key}.{uuid.uuid4().hex}.pins"
        folder.mkdir()
        count = iter(range(1 << 30))

        def pin(product: Product) -> Product:
            link = folder / str(next(count)) / product.path.name
            link.parent.mkdir()
            os.link(product.path, link)
            return Product(product.key, link, product.record)

        try:
            yield pin
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def _remove_stale_staging(self) -> None:
        """Staging files and pin folders left by dead workers, after a day."""
        cutoff = time.time() - _STAGING_MAX_AGE_S
        for path in [*self._staging.glob("*.part"), *self._staging.glob("*.pins")]:
            with contextlib.suppress(FileNotFoundError):
                if path.stat().st_mtime < cutoff:
                    if path.is_dir():
                        shutil.rmtree(path, ignore_errors=True)
                    else:
                        path.unlink()

    def _remove_unindexed_products(self) -> None:
        """Product files that no index row names, after a day: a writer killed between moving
        its file into place and committing the row leaves one (never served, but its space
        would never be reclaimed). The tree is searched at most once an hour per cache."""
        marker = self.directory / "last_orphan_sweep"
        with contextlib.suppress(FileNotFoundError):
            if marker.stat().st_mtime > time.time() - _ORPHAN_SWEEP_INTERVAL_S:
                return
        marker.touch()
        root = self.directory / "products"
        cutoff = time.time() - _STAGING_MAX_AGE_S
        old = []
        for path in root.glob("??/??/*.fits"):
            with contextlib.suppress(FileNotFoundError):
                if path.stat().st_mtime < cutoff:
                    old.append(path)
        if not old:
            return
        # The index is read after the files were listed: a file indexed meanwhile is kept.
        indexed = {row[0] for row in self._cache._sql(
            "SELECT filename FROM Cache WHERE filename IS NOT NULL").fetchall()}
        for path in old:
            if path.relative_to(root).as_posix() not in indexed:
                log.warning("removing product file %s: no cache entry names it", path)
                path.unlink(missing_ok=True)

    # ---- single flight -------------------------------------------------------------------
    def _lock_path(self, key: str) -> Path:
        path = self._locks / key[:2] / f"{key}.lock"
        path.parent.mkdir(exist_ok=True)
        return path

    def _acquire(self, key: str, blocking: bool):
        """An open lock file of `key` holding its flock, or None if busy and not `blocking`.

        The holder removes the lock file as it releases it (so lock files do not pile up, one
        per key ever computed). A waiter may then get the flock on a removed file, which
        excludes nobody: it checks that its file is still the one at the path, else retries.
        """
        path = self._lock_path(key)
        flags = fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB
        while True:
            handle = open(path, "a")
            try:
                fcntl.flock(handle, flags)
                try:
                    current = os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino
                except FileNotFoundError:
                    current = False
            except BlockingIOError:
                handle.close()
                return None
            except BaseException:
                handle.close()
                raise
            if current:
                return handle
            handle.close()

    def _release(self, key: str, handle) -> None:
        try:
            self._lock_path(key).unlink(missing_ok=True)  # while still holding the flock
            fcntl.flock(handle, fcntl.LOCK_UN)
        finally:
            handle.close()

    @contextlib.contextmanager
    def lock(self, key: str) -> Iterator[None]:
        """Exclusive lock on `key` across threads and processes; released if the holder dies."""
        handle = self._acquire(key, blocking=True)
        try:
            yield
        finally:
            self._release(key, handle)

    @contextlib.contextmanager
    def try_lock(self, key: str) -> Iterator[bool]:
        handle = self._acquire(key, blocking=False)
        if handle is None:
            yield False
            return
        try:
            yield True
        finally:
            self._release(key, handle)

    # ---- statistics ----------------------------------------------------------------------
    def _count(self, name: str, delta: int = 1) -> None:
        self._counters.incr(name, delta, retry=True)

    def count_computed(self) -> None:
        self._count("computed")

    def stats(self) -> dict[str, int]:
        names = ("hits", "misses", "computed", "stored", "corrupt")
        result = {name: int(self._counters.get(name, 0, retry=True)) for name in names}
        result["entries"] = len(self._cache)
        result["size_bytes"] = int(self._cache.volume())
        result["size_limit_bytes"] = self.size_limit_bytes
        return result

    def reset_stats(self) -> None:
        self._counters.clear(retry=True)
