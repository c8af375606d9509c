"""`python -m bench hxmt`: throughput and memory of the HXMT HE chain.

Simulates one HE exposure of ~10^6 events and one of ~10^7 (`plugins.hxmt.bench_support`:
a 4-Crab source and the usual backgrounds), then reduces each in a fresh Python process that
runs the HE spectrum chain in-process, on one core, on an empty product cache:
pical -> gtigen -> screen -> specgen -> bkgmap_spec + arfgen + rmfgen.

events_per_s     Level-1 events of the 10^7 exposure over the wall time of its cold chain
vs_bincount      our screen+bin throughput (screen and specgen, reading the cached pical
                 product and verifying it, as the engine does) over that of a bare
                 numpy.bincount of the same PI column already in memory (10^7 run)
peak_rss_mb_1e6  peak resident memory (VmHWM) of the process reducing the 10^6 exposure,
                 read when the chain is done (before the baseline loads a whole column)
peak_rss_mb_1e7  the same for 10^7 (targets: < 1.5 x the 10^6 figure and < 1 GB)

Before anything is timed, each reducing process writes one tiny FITS table and spectrum, so
the one-off initialisation of the FITS machinery (done once per worker in the service) is not
counted as throughput.
warm_ms          time for the engine to return the cached spectrum again (median of 20)
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SIMULATE = textwrap.dedent("""
    import json, sys
    from plugins.hxmt.bench_support import simulate_he
    print(json.dumps({"events": simulate_he(sys.argv[2], duration=float(sys.argv[1]))}))
""")

# Runs in a fresh interpreter: argv = archive root, cache directory.
REDUCE = textwrap.dedent("""
    import json, statistics, sys, time
    import numpy as np
    from pathlib import Path
    from dataserver import Engine, ProductStore
    from dataserver.steps import task_spec
    from dataserver.worker import WorkerContext, run_task
    from plugins.hxmt.archive import Archive
    from plugins.hxmt.calib import open_calibrated
    from plugins.hxmt.instrument import HE
    from plugins.hxmt.pipeline import ExposureRef
    from plugins.hxmt_he import HEInstrument

    root, cache = Path(sys.argv[1]), sys.argv[2]
    exposure = Archive(root).exposures()[0]
    ref = ExposureRef(exposure.exp_id, str(exposure.path.relative_to(root)), exposure.fingerprint(), 0.0, 0.0)
    chain = HEInstrument.chain()
    context = WorkerContext(cache, 10**11, str(root))

    # Warm-up: the executor's workers have the FITS machinery loaded and initialised; so does
    # this process before anything is timed (one tiny table and one tiny spectrum).
    import tempfile
    from dataserver import ogip
    from plugins.hxmt.calib import CALIBRATED_COLUMNS, EXTNAME
    from plugins.hxmt.fitsio import StreamingTableWriter
    with tempfile.TemporaryDirectory() as scratch:
        with StreamingTableWriter(f"{scratch}/t.fits", CALIBRATED_COLUMNS, EXTNAME) as writer:
            writer.write({"PI": np.zeros(4), "DET_ID": np.zeros(4), "FLAG": np.zeros(4)})
        ogip.spectrum_hdulist(ogip.Spectrum(channel=np.arange(4), counts=np.ones(4), exposure=1.0)).writeto(
            f"{scratch}/s.pha")

    def run(node):
        started = time.perf_counter()
        result = run_task(task_spec(node), context)
        assert result["state"] == "done", result["events"]
        return time.perf_counter() - started

    stage = chain.stage_one(ref, HE.screening_expression)
    screened = chain.screen(ref, stage.gti)
    files = {"backfile": "b.pha", "respfile": "r.rmf", "ancrfile": "a.arf"}
    spectrum = chain.spectrum(ref, stage, screened, HE.standard_selection, files)
    seconds = {"pical": run(stage.calibrated), "gtigen": run(stage.gti)}
    seconds["screen+specgen"] = run(spectrum)
    seconds["bkgmap_spec"] = run(chain.background_spectrum(ref, spectrum, screened))
    seconds["arfgen"] = run(chain.arf(ref, stage, screened, HE.standard_selection, 83.633, 22.0145))
    seconds["rmfgen"] = run(chain.rmf())
    # The chain's peak; the baseline below holds a whole column in memory on purpose.
    peak_kb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
    store = ProductStore(cache, 10**11)
    with open_calibrated(store.get(stage.calibrated.key).path) as table:
        pi = table.read(["PI"])["PI"]
    bare = []
    for _ in range(5):
        started = time.perf_counter()
        np.bincount(pi, minlength=256)
        bare.append(time.perf_counter() - started)
    engine = Engine(store, executor=None)
    warm = []
    for _ in range(20):
        started = time.perf_counter()
        assert spectrum.key in engine.run([spectrum]).products
        warm.append(time.perf_counter() - started)
    print(json.dumps({"events": int(pi.size), "seconds": seconds, "bincount_s": min(bare),
                      "warm_s": statistics.median(warm), "peak_rss_mb": peak_kb / 1024}))
""")


def _child(script: str, *args: str) -> dict:
    result = subprocess.run([sys.executable, "-c", script, *args], cwd=ROOT, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"benchmark child failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def run(argv: list[str]) -> dict:
    with tempfile.TemporaryDirectory(prefix="xoda-bench-hxmt-") as tmp:
        pilot = _child(SIMULATE, "300", f"{tmp}/pilot")["events"]
        per_event = 300.0 / max(pilot, 1)
        runs = {}
        for label, target in (("1e6", 1_000_000), ("1e7", 10_000_000)):
            duration = target * per_event
            for attempt in range(3):
                shutil.rmtree(f"{tmp}/{label}", ignore_errors=True)
                events = _child(SIMULATE, repr(duration), f"{tmp}/{label}")["events"]
                if abs(events / target - 1) <= 0.05:
                    break
                # The event rate follows the orbit (SAA, rigidity): correct the length.
                duration *= target / max(events, 1)
            runs[label] = _child(REDUCE, f"{tmp}/{label}", f"{tmp}/cache-{label}")
    large = runs["1e7"]
    cold = sum(large["seconds"].values())
    print("hxmt chain seconds (10^7 events): " + ", ".join(f"{k} {v:.3f}" for k, v in large["seconds"].items()),
          flush=True)
    print(f"hxmt events: {runs['1e6']['events']} and {large['events']}", flush=True)
    return {"events_per_s": int(large["events"] / cold),
            "vs_bincount": round(large["bincount_s"] / large["seconds"]["screen+specgen"], 3),
            "peak_rss_mb_1e6": round(runs["1e6"]["peak_rss_mb"], 1),
            "peak_rss_mb_1e7": round(large["peak_rss_mb"], 1),
            "warm_ms": round(large["warm_s"] * 1e3, 2)}
