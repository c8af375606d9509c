"""Table columns of a job's outputs as JSON, for plotting in the browser.

`output_table(kind, product, lookup, max_points)` reads one product of the cache and returns
the columns a plot needs: a light curve's times, rates, errors and exposure fractions; a
spectrum's rates per keV with the channel energies of its response and its scaled
background; a fit's grouped data, folded model and residuals; GTI intervals; an ARF; the
EBOUNDS of a response. Everything is in the file's own units (times in the file's time
system, stated in `time_reference`). Non-finite values are dropped (light curves) or sent as
null (spectra, fits), so the JSON is valid and a plot shows gaps rather than garbage.

Tables longer than `max_points` rows are rebinned by an integral factor: light curves by
exposure-weighted means of consecutive bins, spectra by summing consecutive channels, so the
browser never receives millions of points; `binning` says by how much.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Mapping

import numpy as np

from dataserver import Product
from dataserver import ogip
from dataserver.ogip.keywords import column, find_hdu, opened

Lookup = Callable[[str], "Product | None"]

DEFAULT_POINTS = 5000
MAX_POINTS = 100_000


class NoTableView(ValueError):
    """The output holds nothing this view can draw (an image, a catalogue, events)."""


def _values(array: np.ndarray) -> list[Any]:
    """Floats for JSON: null where not finite."""
    data = np.asarray(array, float)
    return [float(v) if math.isfinite(v) else None for v in data.tolist()]


def _factor(rows: int, max_points: int) -> int:
    return max(1, math.ceil(rows / max_points))


def _group_sum(values: np.ndarray, factor: int) -> np.ndarray:
    if factor == 1:
        return values
    return np.add.reduceat(values, np.arange(0, values.size, factor))


def _time_reference(obs: ogip.ObsKeywords, t0: float | None) -> dict[str, Any]:
    reference = {"timesys": obs.timesys, "timeunit": obs.timeunit,
                 "mjdrefi": obs.mjdrefi, "mjdreff": obs.mjdreff, "mjdref": obs.mjdref,
                 "t0": t0, "t0_iso": None}
    if t0 is not None:
        try:
            reference["t0_iso"] = obs.to_utc_iso(t0)
        except (ValueError, TypeError):
            reference["t0_iso"] = None
    return reference


def lightcurve_table(product: Product, max_points: int) -> dict[str, Any]:
    curve = ogip.read_lightcurve(product)
    fracexp = curve.fracexp if curve.fracexp is not None else np.ones_like(curve.time)
    good = (np.isfinite(curve.time) & np.isfinite(curve.rate) & np.isfinite(curve.error)
            & np.isfinite(fracexp))
    time, rate, error, fracexp = (a[good] for a in (curve.time, curve.rate, curve.error, fracexp))
    factor = _factor(time.size, max_points)
    if factor > 1:
        # Exposure-weighted means: a bin half in good time weighs half.
        weight = np.maximum(fracexp, 1e-12)
        total = _group_sum(weight, factor)
        time = _group_sum(time * weight, factor) / total
        rate = _group_sum(rate * weight, factor) / total
        error = np.sqrt(_group_sum((error * weight) ** 2, factor)) / total
        fracexp = _group_sum(fracexp, factor) / factor
    t0 = float(time[0] - 0.5 * curve.timedel) if time.size else None
    return {"columns": {"time": _values(time), "rate": _values(rate), "error": _values(error),
                        "fracexp": _values(fracexp)},
            "units": {"time": curve.obs.timeunit, "rate": "count/s", "error": "count/s",
                      "fracexp": ""},
            "rows_total": int(curve.time.size), "dropped": int((~good).sum()), "binning": factor,
            "timedel": curve.timedel * factor, "role": curve.kind.lower(),
            "time_reference": _time_reference(curve.obs, t0)}


def _ebounds(product: Product) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    with opened(product) as hdul:
        hdu = find_hdu(hdul, "RESPONSE", ("EBOUNDS",), ("EBOUNDS",), "EBOUNDS")
        return (np.asarray(column(hdu, "CHANNEL"), np.int64),
                np.asarray(column(hdu, "E_MIN"), float), np.asarray(column(hdu, "E_MAX"), float))


def _rates(spectrum: ogip.Spectrum) -> tuple[np.ndarray, np.ndarray]:
    """Counts per second per channel and their error."""
    exposure = spectrum.exposure if spectrum.exposure > 0 else 1.0
    if spectrum.counts is not None:
        counts = spectrum.counts
        error = spectrum.stat_err if spectrum.stat_err is not None else np.sqrt(np.maximum(counts, 1.0))
        return counts / exposure, error / exposure
    rate = spectrum.rate
    error = spectrum.stat_err if spectrum.stat_err is not None else np.full(rate.shape, np.nan)
    return rate, error


def _named(lookup: Lookup, name: str) -> Product | None:
    return lookup(name) if name and name.upper() != "NONE" else None


def spectrum_table(product: Product, lookup: Lookup, response: Callable[[], "Product | None"],
                   max_points: int) -> dict[str, Any]:
    spectrum = ogip.read_spectrum(product)
    rate, error = _rates(spectrum)
    columns: dict[str, np.ndarray] = {"channel": np.asarray(spectrum.channel, float)}
    background = _named(lookup, spectrum.backfile) if spectrum.kind != "BKG" else None
    if background is not None:
        bkg = ogip.read_spectrum(background)
        if bkg.channel.size == spectrum.channel.size:
            # As XSPEC scales it: by the ratio of BACKSCAL and AREASCAL of source and background.
            scale = (np.asarray(spectrum.backscal, float) / np.asarray(bkg.backscal, float)
                     * np.asarray(spectrum.areascal, float) / np.asarray(bkg.areascal, float))
            bkg_rate, bkg_error = _rates(bkg)
            columns["background"] = bkg_rate * scale
            columns["background_error"] = bkg_error * scale
        else:
            background = None
    factor = _factor(rate.size, max_points)
    columns["rate"], columns["error"] = rate, error
    named_rmf = _named(lookup, spectrum.respfile)
    rmf = named_rmf or response()
    energies = None
    if rmf is not None:
        channel, e_min, e_max = _ebounds(rmf)
        position = {int(c): i for i, c in enumerate(channel)}
        index = [position.get(int(c), -1) for c in spectrum.channel]
        if all(i >= 0 for i in index):
            energies = (e_min[index], e_max[index])
    grouped: dict[str, np.ndarray] = {}
    for name, values in columns.items():
        if name == "channel":
            grouped[name] = values[::factor]
        elif name.endswith("error"):
            grouped[name] = np.sqrt(_group_sum(np.asarray(values, float) ** 2, factor))
        else:
            grouped[name] = _group_sum(np.asarray(values, float), factor)
    units = {"channel": ""}
    if energies is not None:
        e_lo = energies[0][::factor]
        e_hi = np.maximum.reduceat(energies[1], np.arange(0, energies[1].size, factor))
        width = np.where(e_hi > e_lo, e_hi - e_lo, np.nan)
        for name in list(grouped):
            if name != "channel":
                grouped[name] = grouped[name] / width
        grouped["e_min"], grouped["e_max"] = e_lo, e_hi
        units.update(e_min="keV", e_max="keV")
        rate_unit = "count/s/keV"
    else:
        rate_unit = "count/s/channel" if factor == 1 else f"count/s per {factor} channels"
    units.update({name: rate_unit for name in grouped if name not in units})
    return {"columns": {name: _values(values) for name, values in grouped.items()},
            "units": units, "rows_total": int(rate.size), "dropped": 0, "binning": factor,
            "exposure_s": spectrum.exposure, "role": spectrum.kind.lower(),
            "background": spectrum.backfile if background is not None else None,
            "response": spectrum.respfile if named_rmf is not None else None}


# The fit product's PLOT columns (dataserver.fitting) and their names here.
FIT_COLUMNS = {"E_MIN": "e_min", "E_MAX": "e_max", "DATA": "data", "DATA_ERR": "data_error",
               "MODEL": "model", "BACKGROUND": "background", "RESIDUAL": "residual",
               "RATIO": "ratio"}


def fit_table(product: Product) -> dict[str, Any]:
    with opened(product) as hdul:
        plot = next((h for h in hdul[1:] if h.name.upper() == "PLOT"), None)
        if plot is None:
            raise ogip.OgipFormatError("the fit product has no PLOT extension")
        have = {c.name.upper(): c for c in plot.columns}
        columns = {ours: _values(column(plot, name)) for name, ours in FIT_COLUMNS.items()
                   if name in have}
        units = {ours: have[name].unit or "" for name, ours in FIT_COLUMNS.items() if name in have}
        rows = len(plot.data)
    return {"columns": columns, "units": units, "rows_total": rows, "dropped": 0, "binning": 1}


def gti_table(product: Product) -> dict[str, Any]:
    gti = ogip.read_gti(product)
    t0 = float(gti.start.min()) if gti.start.size else None
    return {"columns": {"start": _values(gti.start), "stop": _values(gti.stop)},
            "units": {"start": gti.obs.timeunit, "stop": gti.obs.timeunit},
            "rows_total": int(gti.start.size), "dropped": 0, "binning": 1,
            "good_time": float(np.sum(gti.stop - gti.start)),
            "time_reference": _time_reference(gti.obs, t0)}


def arf_table(product: Product) -> dict[str, Any]:
    arf = ogip.read_arf(product)
    return {"columns": {"e_min": _values(arf.energ_lo), "e_max": _values(arf.energ_hi),
                        "specresp": _values(arf.specresp)},
            "units": {"e_min": "keV", "e_max": "keV", "specresp": "cm2"},
            "rows_total": int(arf.specresp.size), "dropped": 0, "binning": 1}


def ebounds_table(product: Product) -> dict[str, Any]:
    channel, e_min, e_max = _ebounds(product)
    return {"columns": {"channel": _values(channel), "e_min": _values(e_min),
                        "e_max": _values(e_max)},
            "units": {"channel": "", "e_min": "keV", "e_max": "keV"},
            "rows_total": int(channel.size), "dropped": 0, "binning": 1}


def output_table(kind: str, product: Product, lookup: Lookup,
                 response: Callable[[], "Product | None"] = lambda: None,
                 max_points: int = DEFAULT_POINTS) -> dict[str, Any]:
    """The plottable columns of an output of kind `kind` (see the module docstring).

    `lookup(name)` gives another output of the same job by file name (the spectrum's BACKFILE
    and RESPFILE); `response()` the job's response, for a spectrum that does not name one.
    Raises NoTableView for kinds without a table, OgipFormatError for unreadable files.
    """
    if kind == "lightcurve":
        table = lightcurve_table(product, max_points)
    elif kind in ("spectrum", "background"):
        table = spectrum_table(product, lookup, response, max_points)
    elif kind == "fit":
        table = fit_table(product)
    elif kind == "gti":
        table = gti_table(product)
    elif kind == "arf":
        table = arf_table(product)
    elif kind == "rmf":
        table = ebounds_table(product)
    else:
        raise NoTableView(f"outputs of kind {kind!r} have no table view; download the FITS file")
    table["rows"] = len(next(iter(table["columns"].values()), []))
    return table


def unique_response(outputs: list[Mapping[str, Any]], lookup_key: Callable[[str], Any]):
    """The job's response when all its `rmf` outputs are one product (else None); `lookup_key`
    reads a product of the store by its key."""
    keys = {o["key"] for o in outputs if o["kind"] == "rmf"}
    return lookup_key(next(iter(keys))) if len(keys) == 1 else None
