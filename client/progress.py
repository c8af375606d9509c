"""Progress bars for one job or a batch: data units done / total, and how many analysis steps
were computed, restored from the server's cache, or failed.

The numbers are the job's `progress` object; a job without data units counts steps instead.
For a batch, one bar adds up all jobs and says how many are finished.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence, TextIO

from tqdm import tqdm


def _counts(record: Mapping[str, Any]) -> tuple[int, int]:
    """(done, total) in data units, or in steps when the job has no data units."""
    progress = record.get("progress") or {}
    if progress.get("units_total"):
        done = progress.get("units_done", 0)
        if record.get("status") == "done":
            done = progress["units_total"]
        return done, progress["units_total"]
    total = progress.get("steps_total") or 0
    done = total if record.get("status") == "done" else progress.get("steps_done", 0)
    return done, total


def _uses_units(records: Sequence[Mapping[str, Any]]) -> bool:
    return any((r.get("progress") or {}).get("units_total") for r in records)


def summary(records: Sequence[Mapping[str, Any]]) -> str:
    """'steps 12/31, computed 9, restored 3' (and failed, and jobs finished for a batch)."""
    totals = {"steps_done": 0, "steps_total": 0, "computed": 0, "restored": 0, "failed": 0}
    for record in records:
        progress = record.get("progress") or {}
        for key in totals:
            totals[key] += int(progress.get(key) or 0)
    parts = []
    if len(records) > 1:
        finished = sum(1 for r in records if r.get("status") in ("done", "failed"))
        parts.append(f"jobs {finished}/{len(records)}")
    parts.append(f"steps {totals['steps_done']}/{totals['steps_total']}")
    parts.append(f"computed {totals['computed']}")
    parts.append(f"restored {totals['restored']}")
    if totals["failed"]:
        parts.append(f"failed {totals['failed']}")
    return ", ".join(parts)


class ProgressBar:
    """One tqdm bar over one or many jobs; a no-op when disabled."""

    def __init__(self, label: str, stream: TextIO | None, enabled: bool):
        self._bar: tqdm | None = None
        self._label = label
        self._stream = stream
        self._enabled = enabled

    def update(self, records: Sequence[Mapping[str, Any]]) -> None:
        if not self._enabled:
            return
        counted = [_counts(r) for r in records]
        done, total = sum(c[0] for c in counted), sum(c[1] for c in counted)
        unit = " units" if _uses_units(records) else " steps"
        if self._bar is None:
            self._bar = tqdm(total=total, desc=self._label, file=self._stream, mininterval=0,
                             initial=done, postfix=summary(records), unit=unit,
                             leave=True, dynamic_ncols=True,
                             bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt}"
                                        "{unit} [{elapsed}{postfix}]")
        if self._bar.total != total:
            self._bar.total = total
        self._bar.unit = unit
        self._bar.n = done
        self._bar.set_postfix_str(summary(records), refresh=False)
        self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> "ProgressBar":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
