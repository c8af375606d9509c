"""Deterministic content keys.

A key is the sha256 of the canonical JSON of a value. Canonical means: mapping keys sorted,
no insignificant white space, integral floats written as integers (20 and 20.0 give the same
key), -0.0 as 0, numpy scalars as Python numbers, tuples as lists (order kept). Anything
whose text form is not deterministic (sets, arbitrary objects, NaN, infinities, non-string
mapping keys) raises `UnhashableValue` naming where it was found, rather than silently
producing a key that changes between processes.
"""
from __future__ import annotations

import hashlib
import json
import math
from typing import Any, Iterable, Mapping

import numpy as np


class UnhashableValue(TypeError):
    """A value that cannot enter a content key deterministically."""

    def __init__(self, path: str, reason: str):
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


def canonical(value: Any, path: str = "value") -> Any:
    """Return a JSON-ready, canonically normalised copy of `value`."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.generic):
        return canonical(value.item(), path)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise UnhashableValue(path, f"non-finite number {value!r}")
        if value.is_integer():
            return int(value)
        return value
    if isinstance(value, Mapping):
        result = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise UnhashableValue(path, f"mapping key {key!r} is not a string")
            result[key] = canonical(item, f"{path}.{key}")
        return result
    if isinstance(value, (list, tuple)):
        return [canonical(item, f"{path}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, np.ndarray):
        return canonical(value.tolist(), path)
    raise UnhashableValue(path, f"values of type {type(value).__name__} cannot be hashed "
                                "deterministically")


def canonical_json(value: Any, path: str = "value") -> str:
    return json.dumps(canonical(value, path), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=True, allow_nan=False)


def content_key(value: Any, path: str = "value") -> str:
    return hashlib.sha256(canonical_json(value, path).encode("ascii")).hexdigest()


def step_key(step_name: str, version: int | str, params: Mapping[str, Any],
             input_keys: Mapping[str, str | Iterable[str]], external: Mapping[str, Any] | None = None) -> str:
    """Key of one step invocation.

    `params` are the step's own declared parameters after validation and normalisation;
    `input_keys` the keys of its input products (a list for multi-product inputs, whose
    order is significant); `external` identifies data the step reads from outside the cache
    (e.g. the names, versions and sizes of Level-1 archive files).
    """
    record = {
        "step": step_name,
        "version": version,
        "params": params,
        "inputs": {name: (keys if isinstance(keys, str) else list(keys))
                   for name, keys in input_keys.items()},
    }
    if external:
        record["external"] = external
    return content_key(record, path=step_name)
