"""Engine benchmark: a 20-unit query whose per-unit step burns 0.2 s of CPU.

cold_s        the 20-unit query on an empty cache, one worker (the serial cost)
warm_ms       the same query again, everything cached (median of 20 repeats)
cold_over_warm
incremental_frac  a 21-unit query with 20 units cached, over cold_s
speedup_2w    cold time with one worker over cold time with two workers
"""
from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from dataserver import Engine, Settings

UNITS = [f"U{i:02d}" for i in range(21)]
WORK_S = 0.2


def _engine(directory: Path, workers: int) -> Engine:
    return Engine.from_settings(Settings({"data_dir": str(directory), "workers": workers}),
                                preload=["tests.engine_instrument"])


def _timed_run(engine: Engine, units: list[str]) -> float:
    from tests.engine_instrument import plan_nodes

    total = plan_nodes(units, work_s=WORK_S)[1]
    start = time.perf_counter()
    result = engine.run([total])
    elapsed = time.perf_counter() - start
    if not result.ok:
        raise RuntimeError(f"benchmark query failed: {result.failures}")
    return elapsed


def run(argv: list[str]) -> dict:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        one = _engine(tmp / "one", workers=1)
        _timed_run(one, ["WARMUP"])  # starts the forkserver; not part of any figure
        cold = _timed_run(one, UNITS[:20])
        warm = statistics.median(_timed_run(one, UNITS[:20]) for _ in range(20))
        incremental = _timed_run(one, UNITS)
        one.close()

        two = _engine(tmp / "two", workers=2)
        _timed_run(two, ["WARMUP"])
        cold_2w = _timed_run(two, UNITS[:20])
        two.close()
    return {"cold_s": round(cold, 3), "warm_ms": round(warm * 1e3, 3),
            "cold_over_warm": round(cold / warm, 1),
            "incremental_frac": round(incremental / cold, 4),
            "speedup_2w": round(cold / cold_2w, 3)}
