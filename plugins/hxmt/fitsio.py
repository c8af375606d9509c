"""Memory-bounded FITS binary tables: streamed writing and memory-mapped chunked reading.

astropy cannot append rows to a table on disk, and building a 10^7-row table in memory costs
what we want to avoid. `StreamingTableWriter` writes the primary HDU and the table header with
NAXIS2 = 0, streams rows as big-endian records in FITS layout, pads the data to a multiple of
2880 bytes, then rewrites the NAXIS2 card in place; further HDUs (e.g. a GTI) are appended
afterwards. `FitsTable` reads a table's rows through `numpy.memmap`, so a chunk touches only
its own pages, and iterates columns chunk by chunk.
"""
from __future__ import annotations

import io
import mmap
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np
from astropy.io import fits

BLOCK = 2880
_SCALAR = {"L": "S1", "B": "u1", "I": ">i2", "J": ">i4", "K": ">i8", "E": ">f4", "D": ">f8"}


def _field_dtype(tform: str) -> tuple[str, tuple[int, ...]] | str:
    match = re.fullmatch(r"\s*(\d*)([LXBIJKAEDC])(.*)", tform.upper())
    if not match:
        raise ValueError(f"unsupported TFORM {tform!r}")
    repeat = int(match.group(1) or 1)
    code = match.group(2)
    if code == "X":
        return ("u1", ((repeat + 7) // 8,))
    if code == "A":
        return f"S{repeat}"
    if code not in _SCALAR:
        raise ValueError(f"unsupported TFORM {tform!r}")
    return _SCALAR[code] if repeat == 1 else (_SCALAR[code], (repeat,))


def record_dtype(header: fits.Header) -> np.dtype:
    """The on-disk (big-endian) record dtype of a binary table from its TFORMn cards."""
    fields = []
    for i in range(1, int(header["TFIELDS"]) + 1):
        spec = _field_dtype(header[f"TFORM{i}"])
        name = header.get(f"TTYPE{i}", f"col{i}")
        fields.append((name, *spec) if isinstance(spec, tuple) else (name, spec))
    dtype = np.dtype(fields)
    if dtype.itemsize != int(header["NAXIS1"]):
        raise ValueError(f"row width {dtype.itemsize} from TFORMs differs from NAXIS1={header['NAXIS1']}")
    return dtype


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    format: str
    unit: str | None = None


def _padding(nbytes: int) -> int:
    return (-nbytes) % BLOCK


class StreamingTableWriter:
    """Write a FITS file whose first extension is a binary table streamed row-chunk by chunk.

    with StreamingTableWriter(path, columns, extname="Events", header=cards) as writer:
        writer.write({"Time": t, "Det_ID": d, ...})     # any number of times
        writer.append_hdu(gti_hdu)                       # optional, after the rows
    """

    def __init__(self, path: str | Path, columns: Sequence[ColumnSpec], extname: str,
                 header: Iterable[tuple[str, Any, str]] = (), primary_header: fits.Header | None = None):
        self.path = Path(path)
        self.columns = tuple(columns)
        self._extra: list[fits.hdu.base.ExtensionHDU] = []
        table = fits.BinTableHDU.from_columns(
            [fits.Column(name=c.name, format=c.format, unit=c.unit) for c in self.columns], nrows=0)
        # Set the card directly: astropy's `name=` upper-cases it, real files say e.g. 'Events'.
        table.header["EXTNAME"] = (extname, "name of this binary table extension")
        for key, value, comment in header:
            table.header[key] = (value, comment)
        self.dtype = record_dtype(table.header)
        primary = fits.PrimaryHDU(header=primary_header)
        head = io.BytesIO()
        primary.writeto(head)
        self._primary_bytes = head.getvalue()
        self._table_header = table.header
        header_text = table.header.tostring()
        cards = [header_text[i:i + 80] for i in range(0, len(header_text), 80)]
        self._naxis2_card = next(i for i, card in enumerate(cards) if card.startswith("NAXIS2  ="))
        self._header_offset = len(self._primary_bytes)
        self._handle = open(self.path, "wb")
        self._handle.write(self._primary_bytes)
        self._handle.write(header_text.encode("ascii"))
        self.rows = 0
        self._closed = False

    def __enter__(self) -> "StreamingTableWriter":
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if kind is None:
            self.close()
        else:
            self._handle.close()
            self.path.unlink(missing_ok=True)      # never leave a half-written file behind

    def write(self, arrays: Mapping[str, np.ndarray]) -> int:
        """Append rows; every column must be given, all of the same length. X (bit) columns
        take packed bytes (see `pack_bits`)."""
        lengths = {len(np.asarray(arrays[c.name])) if np.ndim(arrays[c.name]) else 1 for c in self.columns}
        if len(lengths) != 1:
            raise ValueError(f"columns of different lengths: {sorted(lengths)}")
        n = lengths.pop()
        if n == 0:
            return 0
        record = np.empty(n, dtype=self.dtype)
        for column in self.columns:
            record[column.name] = arrays[column.name]
        record.tofile(self._handle)
        self.rows += n
        return n

    def append_hdu(self, hdu: fits.hdu.base.ExtensionHDU) -> None:
        self._extra.append(hdu)

    def close(self) -> None:
        if self._closed:
            return
        data_bytes = self.rows * self.dtype.itemsize
        self._handle.write(b"\0" * _padding(data_bytes))
        card = fits.Card("NAXIS2", self.rows, self._table_header.comments["NAXIS2"]).image
        self._handle.seek(self._header_offset + 80 * self._naxis2_card)
        self._handle.write(card.encode("ascii"))
        self._handle.seek(0, os.SEEK_END)
        primary_length = len(fits.PrimaryHDU().header.tostring())     # one 2880-byte block
        for hdu in self._extra:
            # astropy serialises an extension only inside an HDUList: drop the dummy primary.
            buffer = io.BytesIO()
            fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(buffer)
            self._handle.write(buffer.getvalue()[primary_length:])
        self._handle.close()
        self._closed = True


def write_table_file(path: str | Path, columns: Sequence[ColumnSpec], data: Mapping[str, np.ndarray],
                     extname: str, header: Iterable[tuple[str, Any, str]] = (),
                     primary_header: fits.Header | None = None,
                     extra_hdus: Sequence[fits.hdu.base.ExtensionHDU] = ()) -> int:
    """A whole (small) table file in one go, through the same writer."""
    with StreamingTableWriter(path, columns, extname, header, primary_header) as writer:
        writer.write(data)
        for hdu in extra_hdus:
            writer.append_hdu(hdu)
        return writer.rows


class FitsTable:
    """A binary table read through a memory map, in row chunks.

    `table = FitsTable(path, "Events")` (or an HDU index, or a predicate on the header);
    `table.read(["Time", "Det_ID"], start, stop)` returns native-endian copies;
    `table.iter_chunks(columns, chunk_rows)` yields dicts of arrays; never loads the file.
    Column names match case-insensitively (`TIME` finds `Time`).
    """

    def __init__(self, path: str | Path, hdu: str | int | Callable[[fits.Header], bool] = 1):
        self.path = Path(path)
        with fits.open(self.path, memmap=False, lazy_load_hdus=True) as hdul:
            index = _find_hdu(hdul, hdu, self.path)
            target = hdul[index]
            self.header = target.header.copy()
            offset = target.fileinfo()["datLoc"]
            self.extname = target.name
        if self.header.get("XTENSION", "").strip() != "BINTABLE":
            raise ValueError(f"{self.path.name}: HDU {hdu!r} is not a binary table")
        self.dtype = record_dtype(self.header)
        self.rows = int(self.header["NAXIS2"])
        needed = offset + self.rows * self.dtype.itemsize
        size = self.path.stat().st_size
        if size < needed:
            raise ValueError(f"{self.path.name}: truncated ({size} bytes, the table needs {needed})")
        self._names = {name.lower(): name for name in self.dtype.names}
        self._scaling = {}
        for i, name in enumerate(self.dtype.names, start=1):
            scale, zero = self.header.get(f"TSCAL{i}", 1), self.header.get(f"TZERO{i}", 0)
            if scale != 1 or zero != 0:
                self._scaling[name] = (scale, zero)
        self._map = (np.memmap(self.path, dtype=self.dtype, mode="r", offset=offset, shape=(self.rows,))
                     if self.rows else np.zeros(0, dtype=self.dtype))

    def __len__(self) -> int:
        return self.rows

    def __enter__(self) -> "FitsTable":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        mapping = getattr(self._map, "_mmap", None)
        self._map = np.zeros(0, dtype=self.dtype)
        if mapping is not None:
            mapping.close()

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(self.dtype.names)

    def has_column(self, name: str) -> bool:
        return name.lower() in self._names

    def column_name(self, name: str) -> str:
        try:
            return self._names[name.lower()]
        except KeyError:
            raise KeyError(f"{self.path.name} [{self.extname}] has no column {name!r} "
                           f"(columns: {', '.join(self.columns)})") from None

    def read(self, columns: Sequence[str], start: int = 0, stop: int | None = None) -> dict[str, np.ndarray]:
        stop = self.rows if stop is None else min(stop, self.rows)
        chunk = self._map[start:stop]
        out = {}
        for requested in columns:
            name = self.column_name(requested)
            raw = chunk[name]
            values = raw.astype(raw.dtype.newbyteorder("="), copy=True)
            if name in self._scaling:
                scale, zero = self._scaling[name]
                values = values * scale + zero
            out[requested] = values
        self._release(start, stop)
        return out

    def read_records(self, dtype: str | np.dtype, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Rows [start, stop) reinterpreted as `dtype` words, native byte order: shape (rows,)
        when a word is a whole row (e.g. PI >i2, DET_ID u1, FLAG u1 as one big-endian uint32),
        (rows, words per row) otherwise. A pass then handles a few words per event instead of
        copying each column out of the memory map."""
        dtype = np.dtype(dtype)
        width = self.dtype.itemsize
        if width % dtype.itemsize:
            raise ValueError(f"{self.path.name}: rows of {width} bytes are not made of {dtype} words")
        stop = self.rows if stop is None else min(stop, self.rows)
        raw = np.ascontiguousarray(self._map[start:stop]).view(dtype)
        values = raw.astype(dtype.newbyteorder("="))
        self._release(start, stop)
        return values if width == dtype.itemsize else values.reshape(-1, width // dtype.itemsize)

    def _release(self, start: int, stop: int) -> None:
        """Unmap the pages of rows [start, stop) from this process once they are copied: the
        file stays in the page cache, but a pass over a large file no longer grows the
        process's resident memory with every page it touched."""
        handle = getattr(self._map, "_mmap", None)
        if handle is None or stop <= start or not hasattr(handle, "madvise"):
            return
        base = self._map.offset % mmap.ALLOCATIONGRANULARITY        # where row 0 sits in the map
        first = base + start * self.dtype.itemsize
        last = base + stop * self.dtype.itemsize
        page = mmap.PAGESIZE
        first_page = -(-first // page) * page                     # only pages wholly inside
        last_page = (last // page) * page
        if last_page > first_page:
            handle.madvise(mmap.MADV_DONTNEED, first_page, last_page - first_page)

    def iter_chunks(self, columns: Sequence[str], chunk_rows: int = 1_000_000) -> Iterator[dict[str, np.ndarray]]:
        for start in range(0, self.rows, chunk_rows):
            yield self.read(columns, start, start + chunk_rows)

    def search_sorted(self, column: str, values: Sequence[float], side: str = "left") -> np.ndarray:
        """Row indices where `values` would be inserted in a sorted column (like
        numpy.searchsorted), by bisection on the memory map: reads ~log2(rows) values per
        search instead of converting the whole column."""
        import bisect

        view = self._map[self.column_name(column)]
        search = bisect.bisect_left if side == "left" else bisect.bisect_right
        return np.array([search(view, float(v)) for v in values], dtype=np.int64)


def _find_hdu(hdul: fits.HDUList, hdu: str | int | Callable[[fits.Header], bool], path: Path) -> int:
    if isinstance(hdu, int):
        if hdu >= len(hdul):
            raise ValueError(f"{path.name}: no HDU {hdu}")
        return hdu
    for index, item in enumerate(hdul):
        if callable(hdu):
            if hdu(item.header):
                return index
        elif item.name.upper() == str(hdu).upper():
            return index
    raise ValueError(f"{path.name}: no extension {hdu if isinstance(hdu, str) else 'matching'}")


def unpack_bits(packed: np.ndarray, nbits: int) -> np.ndarray:
    """An X column (rows, nbytes) -> bool array (rows, nbits), most significant bit first."""
    return np.unpackbits(np.asarray(packed, dtype=np.uint8), axis=-1)[..., :nbits].astype(bool)


def pack_bits(bits: np.ndarray) -> np.ndarray:
    """bool (rows, nbits) -> uint8 (rows, ceil(nbits/8)) in FITS X order."""
    return np.packbits(np.asarray(bits, dtype=bool), axis=-1)
