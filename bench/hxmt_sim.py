"""`python -m bench hxmt_sim`: HXMT simulator throughput and memory bound.

Simulates one HE exposure of ~10^6 events and one of ~10^7 (a 4-Crab source plus the usual
backgrounds; the duration is sized from a short pilot run), each in a fresh Python process
that reports its own peak resident memory (VmHWM). Figures: events written per second of wall
time in the 10^7 run, and the two peak RSS values. Target: peak RSS at 10^7 < 1.5 x at 10^6,
which the time-sliced, streamed writing guarantees whatever the exposure length.
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Runs in a fresh interpreter: argv = events wanted, seconds per event (from the pilot), dir.
CHILD = textwrap.dedent("""
    import json, sys, time
    from plugins.hxmt.bench_support import simulate_he
    target, per_event, out = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
    started = time.perf_counter()
    written = simulate_he(out, duration=max(10.0, target * per_event))
    elapsed = time.perf_counter() - started
    peak_kb = next(int(line.split()[1]) for line in open('/proc/self/status') if line.startswith('VmHWM:'))
    print(json.dumps({"events": written, "seconds": elapsed, "peak_rss_mb": peak_kb / 1024}))
""")


def _child(target: int, per_event: float, directory: str) -> dict:
    result = subprocess.run([sys.executable, "-c", CHILD, str(target), repr(per_event), directory],
                            cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def run(argv: list[str]) -> dict:
    with tempfile.TemporaryDirectory(prefix="xoda-bench-hxmt-") as tmp:
        pilot = _child(1, 300.0, f"{tmp}/pilot")            # 300 s of data: the event rate
        per_event = 300.0 / max(pilot["events"], 1)
        small = _child(1_000_000, per_event * 1.05, f"{tmp}/e6")
        large = _child(10_000_000, per_event * 1.05, f"{tmp}/e7")
    return {"events_per_s": int(large["events"] / large["seconds"]),
            "peak_rss_mb_1e6": round(small["peak_rss_mb"], 1),
            "peak_rss_mb_1e7": round(large["peak_rss_mb"], 1)}
