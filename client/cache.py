"""The optional local cache of finished results, keyed by job id.

    <root>/<server>/jobs/<job_id>/job.json        the finished job's record
                                  products.json   the products' metadata
                                  files/<name>    the FITS files as served
    <root>/<server>/requests/<sha256>.json        a query as sent -> its job id
    <root>/<server>/schemas/<instrument>/<product>.json   the schema it was checked against

`<server>` is a digest of the server's URL. A job id is the server's content key of the
normalised query, so the same results are found whichever way the query was spelled; the
request index lets an identical call be answered without asking the server at all. Entries
are written to a temporary directory and renamed into place: a reader never sees half an entry.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

log = logging.getLogger(__name__)

_JOB_ID = re.compile(r"^[0-9a-f]{16,128}$")


def safe_file_name(name: str) -> str:
    """A server-given output name as a plain file name (no directories)."""
    base = Path(name.replace("\\", "/")).name
    if base in ("", ".", "..") or base != name:
        raise ValueError(f"unsafe product file name {name!r}")
    return base


@dataclass(frozen=True)
class CachedResult:
    job: dict[str, Any]
    outputs: list[dict[str, Any]]
    files: dict[str, Path]


class LocalCache:
    def __init__(self, root: Path, server_url: str):
        self.root = Path(root)
        self.base = self.root / hashlib.sha256(server_url.encode()).hexdigest()[:16]

    def _job_dir(self, job_id: str) -> Path:
        if not _JOB_ID.match(job_id):
            raise ValueError(f"not a job id: {job_id!r}")
        return self.base / "jobs" / job_id

    # ---- queries -------------------------------------------------------------------------
    @staticmethod
    def request_key(instrument: str, product: str, params: Mapping[str, Any]) -> str:
        text = json.dumps({"instrument": instrument, "product": product, "params": params},
                          sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(text.encode()).hexdigest()

    def job_for_request(self, key: str) -> str | None:
        path = self.base / "requests" / f"{key}.json"
        try:
            job_id = json.loads(path.read_text())["job_id"]
        except (OSError, ValueError, KeyError):
            return None
        return job_id if self.contains(job_id) else None

    def remember_request(self, key: str, job_id: str) -> None:
        self._write_json(self.base / "requests" / f"{key}.json", {"job_id": job_id})

    def _schema_path(self, instrument: str, product: str) -> Path:
        return self.base / "schemas" / safe_file_name(instrument) / f"{safe_file_name(product)}.json"

    def schema(self, instrument: str, product: str) -> dict[str, Any] | None:
        try:
            return json.loads(self._schema_path(instrument, product).read_text())
        except (OSError, ValueError):
            return None

    def remember_schema(self, instrument: str, product: str, schema: Mapping[str, Any]) -> None:
        self._write_json(self._schema_path(instrument, product), schema)

    # ---- results -------------------------------------------------------------------------
    def contains(self, job_id: str) -> bool:
        return (self._job_dir(job_id) / "products.json").is_file()

    def load(self, job_id: str) -> CachedResult | None:
        directory = self._job_dir(job_id)
        try:
            job = json.loads((directory / "job.json").read_text())
            outputs = json.loads((directory / "products.json").read_text())
        except (OSError, ValueError):
            return None
        files = {o["name"]: directory / "files" / safe_file_name(o["name"]) for o in outputs}
        if not all(path.is_file() and path.stat().st_size == o.get("size", path.stat().st_size)
                   for o, path in zip(outputs, files.values())):
            log.warning("local cache entry of job %s is incomplete; dropping it", job_id)
            self.remove(job_id)
            return None
        return CachedResult(job, outputs, files)

    def store(self, job: Mapping[str, Any], outputs: list[dict[str, Any]],
              files: Iterable[tuple[str, Iterable[bytes]]]) -> CachedResult:
        """Write a finished job's files (streamed) and records; returns the stored entry."""
        target = self._job_dir(job["job_id"])
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".incoming-", dir=target.parent))
        try:
            (staging / "files").mkdir()
            for name, chunks in files:
                with open(staging / "files" / safe_file_name(name), "wb") as handle:
                    for chunk in chunks:
                        handle.write(chunk)
            (staging / "job.json").write_text(json.dumps(job, indent=1))
            (staging / "products.json").write_text(json.dumps(outputs, indent=1))
            if target.exists():
                shutil.rmtree(target)
            os.replace(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        stored = self.load(job["job_id"])
        if stored is None:
            raise OSError(f"the local cache entry of job {job['job_id']} could not be read back")
        return stored

    def remove(self, job_id: str) -> None:
        shutil.rmtree(self._job_dir(job_id), ignore_errors=True)

    def job_ids(self) -> list[str]:
        directory = self.base / "jobs"
        if not directory.is_dir():
            return []
        return sorted(p.name for p in directory.iterdir() if _JOB_ID.match(p.name) and
                      (p / "products.json").is_file())

    def clear(self) -> None:
        shutil.rmtree(self.base, ignore_errors=True)

    @staticmethod
    def _write_json(path: Path, value: Any) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=".", dir=path.parent)
        with os.fdopen(handle, "w") as stream:
            json.dump(value, stream)
        os.replace(temporary, path)
