"""Run one benchmark: `python -m bench <name> [args]`.

Each benchmark is a module `bench/<name>.py` with `run(argv) -> dict` returning its figures
in the order they should be printed. This runner prints them as the last line,
`<name>: key=value ...`, and appends a dated row to bench/RESULTS.md. Figures that compare
two things are ratios measured in the same run, so they do not depend on the machine's speed.
"""
from __future__ import annotations

import datetime as dt
import importlib
import os
import platform
import sys
from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")


def _format(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def record(name: str, figures: dict) -> str:
    line = f"{name}: " + " ".join(f"{k}={_format(v)}" for k, v in figures.items())
    stamp = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    machine = f"{os.cpu_count()} cores, Python {platform.python_version()}"
    if not RESULTS.exists():
        RESULTS.write_text("# Benchmark results\n\nEach row is one run of `python -m bench <name>`; "
                           "the newest rows are at the bottom.\n\n| date | machine | result |\n|---|---|---|\n")
    with RESULTS.open("a") as handle:
        handle.write(f"| {stamp} | {machine} | `{line}` |\n")
    return line


def main(argv: list[str]) -> int:
    if not argv:
        names = sorted(p.stem for p in Path(__file__).parent.glob("*.py") if not p.stem.startswith("_"))
        print("usage: python -m bench <name>; available: " + ", ".join(names))
        return 2
    name, rest = argv[0], argv[1:]
    module = importlib.import_module(f"bench.{name}")
    figures = module.run(rest)
    print(record(name, figures), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
