"""The embedded demo archive: what `xoda sim --demo` (and `make run`) builds.

Five proposals of different types, five targets, twelve exposures of 0.8-1.5 ks:

| Proposal | Type | PI (account) | Target | Exposures | Public |
|---|---|---|---|---|---|
| P0101299 | CAL | hxmt_cal | Crab (pulsar, 33.7 ms) | 2 (2017-08-27) + 1 (2018-09-05) | yes |
| P0101315 | Core | hxmt_core | Cyg X-1 | 2 (2017-10-31) | yes (after 1 year) |
| P0101331 | CAL | hxmt_cal | Blank field 1 | 2 (2019-03-12) | yes |
| P0201012 | ToO | wang.fang | Aql X-1 in outburst | 3 (build date - 20, -18, -16 d) | no: 1 year after |
| P0301040 | GO | chen.li | Cen X-3 (4.8 s pulsar) | 2 (build date - 45 d) | no: 1 year after |

Exposure starts are chosen on the model orbit so that every exposure has good time under the
default screening and some of them contain an SAA passage or an Earth occultation, so the
pipelines' screening has something to remove. Dates of the proprietary observations are
relative to the build date, so they stay proprietary for a year after any build.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np

from .orbit import (Orbit, earth_elevations, eci_to_ecef, geodetic, in_polygon, rigidity, saa_times,
                    source_elevation, sun_direction, unit_vector)
from .timeconv import met_to_iso, to_met

DEMO_SEED = 20171
CRAB = {"name": "Crab", "ra": 83.63308, "dec": 22.0145,
        "spectrum": {"model": "powerlaw", "norm": 9.7, "index": 2.1, "nh": 0.36},
        "variability": {"type": "periodic", "period": 0.0337, "epoch": "2017-08-27T00:00:00",
                        "pulsed_fraction": 0.15,
                        "profile": [{"phase": 0.0, "width": 0.03, "amplitude": 1.0},
                                    {"phase": 0.4, "width": 0.05, "amplitude": 0.6}]}}
CYG_X1 = {"name": "Cyg X-1", "ra": 299.59032, "dec": 35.20161,
          "spectrum": {"model": "cutoffpl", "norm": 2.0, "index": 1.7, "ecut": 150.0, "nh": 0.6}}
CEN_X3_PERIOD = 4.8
BLANK_FIELD = {"target": "Blank field 1", "ra": 150.0, "dec": 55.0}


def find_window(orbit: Orbit, ra: float, dec: float, after: float, duration: float, min_good: float = 0.4,
                need: str | None = None, step: float = 10.0, bright_earth: bool = False) -> float:
    """First start (60 s steps, within 2 days after `after`) whose window has at least
    `min_good` of default-screened good time (with LE's DYE_ELV>30 if `bright_earth`) and, if
    asked, contains an SAA passage (`need="saa"`) or an Earth occultation of the target
    (`need="occultation"`)."""
    grid = np.arange(after - 86400.0, after + 2 * 86400.0 + duration + 86400.0, step)
    position = orbit.eci(grid)[0]
    fixed = eci_to_ecef(grid, position)
    lon, lat, _ = geodetic(fixed)
    saa = in_polygon(lon, lat)
    t_saa, tn_saa = saa_times(saa, step, 86400.0)
    elv = source_elevation(grid, orbit, ra, dec, position)
    good = (elv > 10) & (rigidity(fixed)[0] > 8) & ~saa & (t_saa > 300) & (tn_saa > 300)
    first = int(np.searchsorted(grid, after))
    if bright_earth:
        # Only over the searched span, every 24th point: the bright-Earth angle changes slowly
        # and this only picks a window; the simulation computes DYE_ELV every second.
        span = np.arange(first, min(grid.size, first + int((2 * 86400 + duration) / step)), 24)
        pointing = np.broadcast_to(unit_vector(ra, dec), position[span].shape)
        dye = earth_elevations(position[span], pointing, sun_direction(grid[span]))[1]
        bright_ok = np.zeros(grid.size, dtype=bool)
        bright_ok[first:first + 24 * span.size] = np.repeat(dye > 30, 24)[:grid.size - first]
        good &= bright_ok
    window = int(duration / step)
    cum_good = np.concatenate([[0], np.cumsum(good)])
    cum_saa = np.concatenate([[0], np.cumsum(saa)])
    cum_occ = np.concatenate([[0], np.cumsum(elv < 0)])
    # Skip the first 100 s (slew settling) when judging the good fraction.
    settle = int(100 / step)
    for i in range(first, first + int(2 * 86400 / step), int(60 / step)):
        fraction = (cum_good[i + window] - cum_good[i + settle]) / window
        if fraction < min_good:
            continue
        if need == "saa" and cum_saa[i + window] - cum_saa[i] < 30 / step:
            continue
        if need == "occultation" and cum_occ[i + window] - cum_occ[i] < 60 / step:
            continue
        return float(np.round(grid[i]))
    raise ValueError(f"no {duration:.0f} s window with {min_good:.0%} good time{' and ' + need if need else ''} "
                     f"within two days after {met_to_iso(after)}")


def _exposures(orbit: Orbit, ra: float, dec: float, first_day: str, plan: list[tuple[float, str | None]],
               min_good: float = 0.4, bright_earth: bool = False) -> list[dict[str, Any]]:
    out, after = [], to_met(first_day)
    for duration, need in plan:
        start = find_window(orbit, ra, dec, after, duration, min_good, need, bright_earth=bright_earth)
        out.append({"start": met_to_iso(start, precision=0), "duration": duration})
        after = start + duration + 600.0
    return out


def demo_document(today: dt.date | None = None) -> dict[str, Any]:
    """The demo's sky-model document (valid against the schema), for a build on `today`."""
    today = today or dt.datetime.now(dt.timezone.utc).date()
    orbit = Orbit.from_spec({})
    day = lambda offset: (today + dt.timedelta(days=offset)).isoformat()   # noqa: E731
    aql = {"name": "Aql X-1", "ra": 287.81687, "dec": 0.58497,
           "spectrum": {"components": [{"model": "bbodyrad", "kT": 1.5, "norm": 400.0},
                                       {"model": "powerlaw", "norm": 1.0, "index": 2.0}], "nh": 0.4},
           "variability": {"type": "outburst", "peak_time": f"{day(-18)}T12:00:00", "rise": 2 * 86400.0,
                           "decay": 8 * 86400.0, "quiescent": 0.001}}
    cen = {"name": "Cen X-3", "ra": 170.31288, "dec": -60.62379,
           "spectrum": {"model": "cutoffpl", "norm": 0.42, "index": 1.2, "ecut": 20.0, "nh": 2.0},
           "variability": {"type": "periodic", "period": CEN_X3_PERIOD, "epoch": f"{day(-45)}T00:00:00",
                           "pulsed_fraction": 0.4,
                           "profile": [{"phase": 0.0, "width": 0.12, "amplitude": 1.0},
                                       {"phase": 0.5, "width": 0.15, "amplitude": 0.5}]}}
    crab = (CRAB["ra"], CRAB["dec"])
    return {
        "format": "xoda-hxmt-sky/1",
        "name": "xoda HXMT demo archive",
        "description": f"Embedded demo archive built on {today.isoformat()}.",
        "seed": DEMO_SEED,
        "simulation": {"he_csi_rate": 5.0, "he_veto_rate": 3.0},
        "sources": [CRAB, CYG_X1, aql, cen],
        "proposals": [
            {"id": "P0101299", "type": "CAL", "pi": "hxmt_cal", "pi_name": "HXMT Calibration Team",
             "title": "Crab: effective-area and timing calibration",
             "observations": [
                 {"id": "P0101299001", "target": "Crab", "roll": 30.0,
                  "exposures": _exposures(orbit, *crab, "2017-08-27", [(1000.0, "occultation"), (1000.0, "saa")])},
                 {"id": "P0101299002", "target": "Crab", "roll": -20.0,
                  "exposures": _exposures(orbit, *crab, "2018-09-05", [(1000.0, None)], 0.6)}]},
            {"id": "P0101315", "type": "Core", "pi": "hxmt_core", "pi_name": "HXMT Core Science Team",
             "title": "Cyg X-1 in the hard state", "public_date": "+365d",
             "observations": [
                 {"id": "P0101315001", "target": "Cyg X-1", "roll": 75.0,
                  "exposures": _exposures(orbit, CYG_X1["ra"], CYG_X1["dec"], "2017-10-31",
                                          [(1000.0, None), (1000.0, "saa")])}]},
            {"id": "P0101331", "type": "CAL", "pi": "hxmt_cal", "pi_name": "HXMT Calibration Team",
             "title": "Blank sky for the background models",
             "observations": [
                 {"id": "P0101331001", **BLANK_FIELD, "roll": 0.0,
                  "exposures": _exposures(orbit, BLANK_FIELD["ra"], BLANK_FIELD["dec"], "2019-03-12",
                                          [(1500.0, "saa"), (1500.0, "occultation")])}]},
            {"id": "P0201012", "type": "ToO", "pi": "wang.fang", "pi_name": "Fang Wang",
             "title": "Aql X-1: the rise and decay of an outburst", "public_date": "+365d",
             "observations": [
                 {"id": "P0201012001", "target": "Aql X-1", "roll": 10.0,
                  "exposures": [e for offset in (-20, -18, -16) for e in
                                _exposures(orbit, aql["ra"], aql["dec"], day(offset), [(800.0, None)], 0.5,
                                           bright_earth=True)]}]},
            {"id": "P0301040", "type": "GO", "pi": "chen.li", "pi_name": "Li Chen",
             "title": "Cen X-3: pulse profile across the energy band", "public_date": "+365d",
             "observations": [
                 {"id": "P0301040001", "target": "Cen X-3", "roll": -45.0,
                  "exposures": _exposures(orbit, cen["ra"], cen["dec"], day(-45),
                                          [(1000.0, None), (1000.0, "saa")])}]},
        ],
    }
