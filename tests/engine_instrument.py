"""A synthetic instrument that exercises the engine: per-unit chains and a merge.

Each unit (think: one exposure) goes through calibrate -> screen -> extract, and a merge
step sums the per-unit spectra. Steps burn a chosen amount of real CPU time, and record
every call in a counter directory (`XODA_TEST_COUNTERS`), so tests can prove what was
computed and what came from the cache, whatever process or container ran the step. A file
`fail-<unit>` in that directory makes calibrate fail for that unit (a transient failure that
does not enter any key); the `crash` parameter makes it raise or kill its own process.
"""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from astropy.io import fits

from dataserver import Instrument, Output, Plan, PlanOutput, ProductType, QueryError, Unit, step

COUNTERS_ENV = "XODA_TEST_COUNTERS"


def _record_call(step_name: str, unit: str | None) -> None:
    directory = os.environ.get(COUNTERS_ENV)
    if directory:
        with open(Path(directory) / f"{step_name}.calls", "a") as handle:
            handle.write(f"{unit}\n")


def read_calls(directory: Path, step_name: str) -> list[str]:
    path = Path(directory) / f"{step_name}.calls"
    return path.read_text().split() if path.exists() else []


def _burn_cpu(seconds: float) -> None:
    """Spend `seconds` of this process's CPU time (not wall time) on real work."""
    end = time.process_time() + seconds
    value = b"xoda"
    while time.process_time() < end:
        for _ in range(2000):
            value = np.frombuffer(value * 8, dtype=np.uint8).sum().tobytes()


def _unit_seed(unit: str) -> int:
    return int.from_bytes(unit.encode()[-4:].rjust(4, b"\0"), "big")


@step(version=1, params={
    "events": {"type": "integer", "minimum": 1, "maximum": 10_000_000, "default": 1000},
    "work_s": {"type": "number", "minimum": 0, "default": 0.0},
    "crash": {"type": "string", "enum": ["no", "raise", "kill"], "default": "no"},
})
def calibrate(events: int, work_s: float, crash: str, context) -> fits.HDUList:
    """Make a unit's calibrated event list (deterministic in the unit id)."""
    _record_call("calibrate", context.unit)
    directory = os.environ.get(COUNTERS_ENV)
    if directory and (Path(directory) / f"fail-{context.unit}").exists():
        raise RuntimeError(f"detector data of {context.unit} unreadable (injected failure)")
    if crash == "raise":
        raise ValueError(f"calibration table missing for {context.unit}")
    if crash == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    _burn_cpu(work_s)
    rng = np.random.default_rng(_unit_seed(context.unit))
    energy = rng.exponential(20.0, size=events).astype(np.float32) + 5.0
    table = fits.BinTableHDU.from_columns(
        [fits.Column(name="ENERGY", format="E", unit="keV", array=energy)], name="EVENTS")
    return fits.HDUList([fits.PrimaryHDU(), table])


def _screen(events, threshold: float, context) -> Output:
    _record_call("screen", context.unit)
    with events.open() as hdul:
        energy = np.asarray(hdul["EVENTS"].data["ENERGY"])
    kept = energy[energy >= threshold]
    table = fits.BinTableHDU.from_columns(
        [fits.Column(name="ENERGY", format="E", unit="keV", array=kept)], name="EVENTS")
    return Output(fits.HDUList([fits.PrimaryHDU(), table]), {"kept": int(kept.size)})


_SCREEN_PARAMS = {"threshold": {"type": "number", "minimum": 0, "default": 10.0, "unit": "keV"}}
screen = step(version=1, name="engine_instrument.screen", params=_SCREEN_PARAMS,
              inputs=["events"])(_screen)
# The same step after a code change: its VERSION was bumped.
screen_v2 = step(version=2, name="engine_instrument.screen", params=_SCREEN_PARAMS,
                 inputs=["events"])(_screen)


@step(version=1, inputs=["events"], params={
    "nbins": {"type": "integer", "minimum": 1, "maximum": 4096, "default": 32},
    "emax": {"type": "number", "exclusiveMinimum": 0, "default": 100.0, "unit": "keV"},
})
def extract(events, nbins: int, emax: float, context) -> Output:
    """Histogram a unit's screened events into a spectrum written chunk by chunk."""
    _record_call("extract", context.unit)
    with events.open() as hdul:
        energy = np.asarray(hdul["EVENTS"].data["ENERGY"])
    counts, _ = np.histogram(energy, bins=nbins, range=(0.0, emax))
    hdu = fits.BinTableHDU.from_columns(
        [fits.Column(name="CHANNEL", format="J", array=np.arange(nbins)),
         fits.Column(name="COUNTS", format="J", array=counts)], name="SPECTRUM")
    # Written by the step itself to show the streamed-output path of the engine.
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(context.output_path)
    return Output(None, {"total": int(counts.sum())})


@step(version=1, inputs=["spectra"])
def merge(spectra, context) -> Output:
    """Sum the per-unit spectra."""
    _record_call("merge", None)
    total = None
    for product in spectra:
        with product.open() as hdul:
            counts = np.asarray(hdul["SPECTRUM"].data["COUNTS"], dtype=np.int64)
        total = counts if total is None else total + counts
    hdu = fits.BinTableHDU.from_columns(
        [fits.Column(name="CHANNEL", format="J", array=np.arange(total.size)),
         fits.Column(name="COUNTS", format="K", array=total)], name="SPECTRUM")
    return Output(fits.HDUList([fits.PrimaryHDU(), hdu]),
                  {"total": int(total.sum()), "units": len(spectra)})


def plan_nodes(units: Sequence[str], *, events: int = 1000, work_s: float = 0.0,
               threshold: float = 10.0, nbins: int = 32, crash: Mapping[str, str] | None = None,
               screen_step=screen):
    """The per-unit chains and the merge node for `units`."""
    crash = crash or {}
    spectra = []
    for unit in units:
        cal = calibrate.node(unit=unit, external={"unit": unit}, events=events, work_s=work_s,
                             crash=crash.get(unit, "no"))
        scr = screen_step.node(unit=unit, events=cal, threshold=threshold)
        spectra.append(extract.node(unit=unit, events=scr, nbins=nbins))
    return spectra, merge.node(spectra=spectra)


class EngineTestInstrument(Instrument):
    """Registered by tests (never installed): the engine's test instrument over HTTP."""

    name = "enginetest"
    title = "Engine test instrument"
    mission = "Test"
    description = "Synthetic per-unit chains for testing the engine and the dispatcher."

    def step_modules(self) -> Sequence[str]:
        return (__name__,)

    def products(self) -> Mapping[str, ProductType]:
        parameters = {
            "units": {"type": "array", "items": {"type": "string", "pattern": "^[A-Z0-9]{1,12}$"},
                      "minItems": 1, "maxItems": 200, "default": ["U1", "U2"],
                      "description": "Data units to combine"},
            "threshold": {"type": "number", "minimum": 0, "maximum": 1000, "default": 10.0,
                          "unit": "keV", "description": "Lowest energy kept"},
            "nbins": {"type": "integer", "minimum": 1, "maximum": 4096, "default": 32,
                      "description": "Number of spectral channels"},
            "work_s": {"type": "number", "minimum": 0, "maximum": 60, "default": 0.0,
                       "unit": "s", "description": "CPU time each unit's calibration takes"},
        }
        return {"spectrum": ProductType("spectrum", "Summed spectrum",
                                        "Spectrum summed over the units", parameters,
                                        self._plan_spectrum)}

    def _plan_spectrum(self, params: Mapping) -> Plan:
        units = params["units"]
        if len(set(units)) != len(units):
            raise QueryError("units", "each unit may appear only once")
        spectra, total = plan_nodes(units, threshold=params["threshold"], nbins=params["nbins"],
                                    work_s=params["work_s"])
        outputs = [PlanOutput("spectrum_total.fits", total, "spectrum", "Summed spectrum")]
        outputs += [PlanOutput(f"spectrum_{u}.fits", s, "spectrum", f"Spectrum of unit {u}")
                    for u, s in zip(units, spectra)]
        return Plan(tuple(outputs), tuple(Unit(u, label=f"unit {u}") for u in units))
