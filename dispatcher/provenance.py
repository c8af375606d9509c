"""Products as users receive them: the cached FITS file plus the provenance of their job.

Cached products are shared by every job that needs them, so job-specific provenance (the
reproducible link, the job id) cannot be stored in them. It is added when a file is served:
the primary header is rewritten with the provenance cards and the rest of the file (the
primary data and every extension) is streamed byte for byte from the cache, so serving costs
no more memory than a header, whatever the file's size.

Cards added to the primary header:
    XODAVER   xoda version that served the file
    XODAJOB   job id (content key of the normalised query, 64 hex digits)
    XODAINST  instrument;  XODAPROD  product;  XODAFILE  name of this output
    XODALINK  the job's reproducible link (long-string CONTINUE cards when needed)
    XODASTEP  the step that made this file, and its version in XODASVER
    HISTORY   one line per step of the chain: "xoda step <name> v<version> (<n> invocations)"
"""
from __future__ import annotations

import io
import json
import os
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Iterator, Mapping

from astropy.io import fits

from dataserver import Product, __version__

CHUNK = 1 << 20


def provenance_cards(job_id: str, instrument: str, product: str, output: Mapping[str, Any],
                     link: str) -> tuple[list[tuple[str, Any, str]], list[str]]:
    cards = [
        ("XODAVER", __version__, "xoda version that served this file"),
        ("XODAJOB", job_id, ""),
        ("XODAINST", instrument, "xoda instrument"),
        ("XODAPROD", product, "xoda product"),
        ("XODAFILE", output["name"], "name of this output"),
        ("XODASTEP", output["step"], "step that made this file"),
        ("XODASVER", str(output["version"]), "version of that step"),
        ("XODALINK", link, "reproducible link of the job"),
    ]
    history = [f"xoda step {c['step']} v{c['version']} ({c['invocations']} invocation"
               f"{'s' if c['invocations'] != 1 else ''})" for c in output.get("chain", [])]
    return cards, history


def with_provenance(header: fits.Header, cards: list[tuple[str, Any, str]],
                    history: list[str]) -> fits.Header:
    header = header.copy()
    for key, value, comment in cards:
        header[key] = (value, comment)
    for line in history:
        header.add_history(line)
    return header


@dataclass
class ServedFile:
    """A cached product with provenance in its primary header, ready to stream."""

    path: Path
    head: bytes          # the new primary header (padded to 2880-byte blocks)
    data_offset: int     # where the primary data begin in the cached file
    size: int

    @classmethod
    def open(cls, product: Product, cards: list[tuple[str, Any, str]],
             history: list[str]) -> "ServedFile":
        with fits.open(product.path, memmap=False, lazy_load_hdus=True) as hdul:
            primary = hdul[0]
            info = hdul.fileinfo(0)
            header = with_provenance(primary.header, cards, history)
            if "CHECKSUM" in header:
                rebuilt = fits.PrimaryHDU(data=primary.data, header=header)
                rebuilt.add_checksum()
                header = rebuilt.header
        head = header.tostring(padding=True, endcard=True).encode("ascii")
        data_offset = int(info["datLoc"])
        size = len(head) + os.path.getsize(product.path) - data_offset
        return cls(Path(product.path), head, data_offset, size)

    def chunks(self) -> Iterator[bytes]:
        yield self.head
        with open(self.path, "rb") as handle:
            handle.seek(self.data_offset)
            while chunk := handle.read(CHUNK):
                yield chunk

    def reader(self) -> BinaryIO:
        return io.BufferedReader(_ChainReader(self.chunks()), buffer_size=CHUNK)

    def hdulist(self) -> fits.HDUList:
        """The whole file in memory, as served (for encodings that need the data)."""
        return fits.HDUList.fromstring(b"".join(self.chunks()))


class _ChainReader(io.RawIOBase):
    """A file-like reader over an iterator of byte chunks (for tarfile)."""

    def __init__(self, chunks: Iterator[bytes]):
        self._chunks = chunks
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, target) -> int:
        while not self._buffer:
            try:
                self._buffer = next(self._chunks)
            except StopIteration:
                return 0
        count = min(len(target), len(self._buffer))
        target[:count] = self._buffer[:count]
        self._buffer = self._buffer[count:]
        return count


def write_archive(directory: Path, folder: str, files: list[tuple[str, ServedFile]],
                  extras: Mapping[str, str], mtime: float | None = None) -> BinaryIO:
    """A tar.gz of `files` and the text `extras`, in an unlinked temporary file (rewound)."""
    directory.mkdir(parents=True, exist_ok=True)
    handle = tempfile.TemporaryFile(dir=directory)
    stamp = int(mtime or time.time())
    with tarfile.open(fileobj=handle, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        for name, text in extras.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{folder}/{name}")
            info.size, info.mtime, info.mode = len(data), stamp, 0o644
            tar.addfile(info, io.BytesIO(data))
        for name, served in files:
            info = tarfile.TarInfo(f"{folder}/{name}")
            info.size, info.mtime, info.mode = served.size, stamp, 0o644
            tar.addfile(info, served.reader())
    handle.seek(0)
    return handle


def json_text(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, allow_nan=False, default=str) + "\n"
