"""FITS products in the ODA `NumpyDataProduct` JSON encoding that `oda_api` 1.3.5 decodes.

One `NumpyDataProduct` per output file, one data unit per HDU (`name`, `hdu_type`, `dt`,
`header`, `meta_data`, and the data either as `data`, the Python literal text of the rows,
or as `binarys`, base64 of a pickle). The text form is used whenever it reproduces the HDU
exactly (plain numeric and string columns or images of two or more dimensions, all values
finite): it needs no pickle, so it also reaches clients on another numpy version. Tables
with variable-length, scaled, logical or bit columns, ASCII tables, one-dimensional images
and anything holding NaN go as a pickle, like the ODA dispatcher's own.

The 1.3.5 client parses a reply with `ast.literal_eval(str(json).replace('null', 'None'))`,
so no string anywhere may contain `null` in its Python repr: base64 payloads get a `.`
(ignored by `base64.b64decode`) inside every `null`, and `oda_safe` rewrites free text.
"""
from __future__ import annotations

import base64
import json
import math
import pickle
import re
from typing import Any, Mapping

import numpy as np
from astropy.io import fits
from astropy.io.fits.card import Undefined

_TEXT_FORMATS = re.compile(r"^\d*[BIJKEDA]$")


def _header_dict(header: fits.Header) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in header.items():
        if not key or key in ("COMMENT", "HISTORY") or isinstance(value, Undefined):
            continue
        if isinstance(value, float) and not math.isfinite(value):
            continue
        if isinstance(value, (bool, int, float, str)):
            result[key] = value
    history = [str(v) for v in header.get("HISTORY", [])]
    if history:
        # One card of it survives the client's dict-based header; keep them joined.
        result["HISTORY"] = " | ".join(history)
    return result


def _hdu_type(hdu: fits.hdu.base._BaseHDU) -> str:
    if isinstance(hdu, fits.PrimaryHDU):
        return "primary"
    if isinstance(hdu, fits.ImageHDU):
        return "image"
    if isinstance(hdu, fits.BinTableHDU):
        return "bintable"
    if isinstance(hdu, fits.TableHDU):
        return "table"
    raise ValueError(f"HDU {hdu.name!r} of type {type(hdu).__name__} has no ODA encoding")


def _all_finite(array: np.ndarray) -> bool:
    if array.dtype.names:
        return all(_all_finite(array[name]) for name in array.dtype.names)
    if array.dtype.kind in "fc":
        return bool(np.isfinite(array).all())
    return array.dtype.kind in "biuSUV"


def _rows_as_text(hdu) -> str | None:
    """The data as Python literal text the client `eval`s, or None if it would not be exact."""
    data = hdu.data
    if isinstance(hdu, fits.BinTableHDU):
        for column in hdu.columns:
            scaled = column.bscale not in (None, 1) or column.bzero not in (None, 0)
            if scaled or not _TEXT_FORMATS.match(str(column.format)):
                return None
        array = np.asarray(data).view(np.ndarray)
    elif isinstance(hdu, (fits.PrimaryHDU, fits.ImageHDU)):
        if hdu.header.get("BSCALE", 1) != 1 or hdu.header.get("BZERO", 0) != 0:
            return None
        array = np.asarray(data)
        if array.ndim < 2:
            return None
    else:
        return None
    if not _all_finite(array):
        return None
    if array.dtype.names:
        # Column by column: tolist() of a record keeps sub-array fields as numpy arrays.
        rows = list(zip(*(array[name].tolist() for name in array.dtype.names)))
    else:
        rows = array.tolist()
    text = repr(rows)
    return text if "null" not in text else None


def _dtype_text(array: np.ndarray) -> str:
    return str(array.dtype.descr) if array.dtype.names else array.dtype.str


def null_free_base64(payload: bytes) -> str:
    """base64 text the client decodes to `payload` and whose text contains no `null`."""
    return base64.b64encode(payload).decode("ascii").replace("null", "nul.l")


def data_unit(hdu) -> dict[str, Any]:
    header = _header_dict(hdu.header)
    unit: dict[str, Any] = {"name": hdu.name or "Primary", "hdu_type": _hdu_type(hdu),
                            "header": header, "meta_data": {}, "dt": None, "data": None,
                            "binarys": None}
    if hdu.data is None:
        return unit
    text = _rows_as_text(hdu)
    array = np.asarray(hdu.data)
    unit["dt"] = _dtype_text(array)
    if text is not None:
        unit["data"] = text
    else:
        if isinstance(hdu, (fits.BinTableHDU, fits.TableHDU)):
            payload = hdu.data
            for name in hdu.columns.names:
                # Converted columns (variable-length arrays, scaled and logical values) are
                # pickled with the FITS_rec only once they have been read.
                payload[name]
        else:
            payload = array
        # Protocol 4: readable by every Python 3 the client supports.
        unit["binarys"] = null_free_base64(pickle.dumps(payload, protocol=4))
    return unit


def numpy_data_product(hdul: fits.HDUList, name: str, meta: Mapping[str, Any]) -> dict[str, Any]:
    return {"name": name, "meta_data": json.dumps(oda_safe(dict(meta)), allow_nan=False),
            "data_unit_list": [data_unit(hdu) for hdu in hdul]}


def _safe_text(text: str) -> str:
    if "null" in text:
        text = text.replace("null", "NULL")
    if "null" in repr(text):         # e.g. a newline followed by "ull"
        text = text.replace("\n", " ")
    return text


def oda_safe(value: Any) -> Any:
    """A copy of `value` where no string (key or value) contains `null`, even in its repr,
    and no float is NaN or infinite."""
    if isinstance(value, str):
        return _safe_text(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {_safe_text(str(k)): oda_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [oda_safe(v) for v in value]
    return value
