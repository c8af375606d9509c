"""matplotlib figures of products. Functions take an Axes (or a Figure for multi-panel
plots) or None for a new figure, and return what they drew on.

matplotlib is imported when a plot is drawn, never before.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
from astropy.io import fits
from astropy.table import Table

if TYPE_CHECKING:
    from .products import ProductCollection

MAX_LIGHTCURVES = 6
_RA_NAMES = ("RA", "RA_OBJ", "RA_FIN", "RAJ2000", "RA_DEG")
_DEC_NAMES = ("DEC", "DEC_OBJ", "DEC_FIN", "DEJ2000", "DECJ2000", "DEC_DEG")
_AXIS_NAMES = {"RA": "RA (J2000)", "DEC": "Dec (J2000)", "GLON": "Galactic longitude",
               "GLAT": "Galactic latitude"}


def _pyplot():
    import matplotlib.pyplot as plt

    return plt


def _axes(ax: Any) -> Any:
    if ax is None:
        _, ax = _pyplot().subplots(figsize=(8, 4), layout="constrained")
    return ax


def _unit_label(table: Table, name: str) -> str:
    unit = table[name].unit
    text = unit.to_string() if unit is not None else table[name].meta.get("unit_text", "")
    return f"{name} [{text}]" if text else name


def _title(header: fits.Header) -> str:
    parts = [str(header.get(k)) for k in ("OBJECT", "TELESCOP", "INSTRUME") if header.get(k)]
    return " ".join(parts)


def absolute_times(times: np.ndarray, header: fits.Header) -> Any:
    """Mission times of a FITS table (TIMEUNIT since MJDREF[I/F] in TIMESYS) as a Time."""
    from astropy import units as u
    from astropy.time import Time

    if "MJDREFI" in header:
        mjdref = (float(header["MJDREFI"]), float(header.get("MJDREFF", 0.0)))
    elif "MJDREF" in header:
        mjdref = (float(header["MJDREF"]), 0.0)
    else:
        raise ValueError("the table has no MJDREF/MJDREFI keyword: its times are not absolute")
    scale = str(header.get("TIMESYS", "TT")).lower()
    unit = u.Unit(str(header.get("TIMEUNIT", "s")).strip() or "s")
    epoch = Time(mjdref[0], mjdref[1], format="mjd", scale=scale)
    return epoch + (np.asarray(times, float) + float(header.get("TIMEZERO", 0.0))) * unit


def _moment(time: float, header: fits.Header) -> str:
    """A mission time as 'YYYY-MM-DDThh:mm:ss UTC', or as the number when not absolute."""
    from astropy.time import ScaleValueError

    try:
        return f"{absolute_times(np.array([time]), header)[0].utc.isot[:19]} UTC"
    except (ValueError, ScaleValueError):      # no MJDREF, unknown TIMESYS or TIMEUNIT
        return f"{time:.6g}"


# ---- light curves and GTIs -----------------------------------------------------------------
def _mjdref(header: fits.Header) -> tuple[float, float] | None:
    if "MJDREFI" in header:
        return float(header["MJDREFI"]), float(header.get("MJDREFF", 0.0))
    if "MJDREF" in header:
        return float(header["MJDREF"]), 0.0
    return None


def plot_lightcurves(ax: Any, curves: Sequence[tuple[Table, fits.Header, str | None]],
                     gtis: Sequence[tuple[Table, fits.Header]] = (), **kwargs: Any) -> Any:
    """Rates with error bars against time since the earliest start; the good-time intervals
    of `gtis` shaded behind them (those on the curves' time reference)."""
    from .products import column_name

    ax = _axes(ax)
    starts = []
    for table, header, _ in curves:
        time = np.asarray(table[column_name(table, "TIME")], float)
        starts.append(float(header.get("TSTART", time.min() if time.size else 0.0)))
    origin = min(starts) if starts else 0.0
    for table, header, label in curves:
        time_col = column_name(table, "TIME")
        rate_col = column_name(table, "RATE", "COUNTS", "FLUX")
        error_col = column_name(table, "ERROR", "RATE_ERR", "ERR", "STAT_ERR", "FLUX_ERR",
                                required=False)
        time = np.asarray(table[time_col], float) - origin
        rate = np.asarray(table[rate_col], float)
        error = np.asarray(table[error_col], float) if error_col else None
        options = {"fmt": ".", "ms": 3, "elinewidth": 0.6, "label": label, **kwargs}
        ax.errorbar(time, rate, yerr=error, **options)
    table, header, _ = curves[0]
    shaded = False
    for gti, gti_header in gtis:
        # Times of another reference (or none) cannot be placed on this axis.
        if _mjdref(gti_header) != _mjdref(header) or not {"START", "STOP"} <= set(gti.colnames):
            continue
        for start, stop in zip(np.asarray(gti["START"], float), np.asarray(gti["STOP"], float)):
            ax.axvspan(start - origin, stop - origin, color="tab:green", alpha=0.15, lw=0,
                       label=None if shaded else "good time")
            shaded = True
    time_unit = table[column_name(table, "TIME")].unit or str(header.get("TIMEUNIT", "s"))
    ax.set_xlabel(f"Time since {_moment(origin, header)} [{time_unit}]")
    ax.set_ylabel(_unit_label(table, column_name(table, "RATE", "COUNTS", "FLUX")))
    ax.set_title(_title(header) or "Light curve")
    if (any(label for _, _, label in curves) and len(curves) > 1) or shaded:
        ax.legend(fontsize="small")
    return ax


def plot_gti(ax: Any, table: Table, header: fits.Header, **kwargs: Any) -> Any:
    ax = _axes(ax)
    start, stop = np.asarray(table["START"], float), np.asarray(table["STOP"], float)
    origin = float(header.get("TSTART", start.min() if start.size else 0.0))
    ax.broken_barh(list(zip(start - origin, stop - start)), (0, 1), **{"color": "tab:green", **kwargs})
    ax.set_yticks([])
    ax.set_xlabel(f"Time since {_moment(origin, header)} "
                  f"[{table['START'].unit or header.get('TIMEUNIT', 's')}]")
    ax.set_title(f"Good-time intervals: {np.sum(stop - start):.6g} s in {start.size} interval(s)")
    return ax


# ---- spectra and fits ----------------------------------------------------------------------
def _spectrum_rates(hdu: fits.BinTableHDU) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(channel, rate, error) in counts/s per channel."""
    data, header = hdu.data, hdu.header
    names = [n.upper() for n in data.columns.names]
    channel = np.asarray(data["CHANNEL"], int)
    if "RATE" in names:
        rate = np.asarray(data["RATE"], float)
        error = (np.asarray(data["STAT_ERR"], float) if "STAT_ERR" in names
                 else np.full(rate.shape, np.nan))
    else:
        exposure = float(header.get("EXPOSURE") or 1.0)
        counts = np.asarray(data["COUNTS"], float)
        rate = counts / exposure
        error = (np.asarray(data["STAT_ERR"], float) if "STAT_ERR" in names
                 else np.sqrt(np.maximum(counts, 1.0))) / exposure
    return channel, rate, error


def _backscal(hdu: fits.BinTableHDU) -> float | np.ndarray:
    if "BACKSCAL" in [n.upper() for n in hdu.data.columns.names]:
        return np.asarray(hdu.data["BACKSCAL"], float)
    return float(hdu.header.get("BACKSCAL", 1.0) or 1.0)


def plot_spectrum(ax: Any, hdu: fits.BinTableHDU, ebounds: fits.BinTableHDU | None = None,
                  background: fits.BinTableHDU | None = None, **kwargs: Any) -> Any:
    ax = _axes(ax)
    channel, rate, error = _spectrum_rates(hdu)
    curves = [("source", rate, error)]
    if background is not None:
        _, bkg_rate, bkg_error = _spectrum_rates(background)
        scale = _backscal(hdu) / _backscal(background)
        curves.append(("background (scaled)", bkg_rate * scale, bkg_error * scale))
    if ebounds is not None:
        bounds = {int(c): (lo, hi) for c, lo, hi in zip(ebounds.data["CHANNEL"],
                                                        ebounds.data["E_MIN"], ebounds.data["E_MAX"])}
        known = np.array([c in bounds for c in channel])
        e_lo = np.array([bounds[c][0] for c in channel[known]])
        e_hi = np.array([bounds[c][1] for c in channel[known]])
        x, xerr = 0.5 * (e_lo + e_hi), 0.5 * (e_hi - e_lo)
        for label, values, errors in curves:
            ax.errorbar(x, values[known] / (e_hi - e_lo), xerr=xerr, yerr=errors[known] / (e_hi - e_lo),
                        fmt=".", ms=2, elinewidth=0.5, label=label, **kwargs)
        ax.set_xscale("log")
        ax.set_xlabel("Energy [keV]")
        ax.set_ylabel("Rate [count / (keV s)]")
    else:
        for label, values, errors in curves:
            ax.errorbar(channel, values, yerr=errors, fmt=".", ms=2, elinewidth=0.5, label=label,
                        **kwargs)
        ax.set_xlabel("Channel")
        ax.set_ylabel("Rate [count / s per channel]")
    ax.set_yscale("log", nonpositive="mask")
    ax.set_title(_title(hdu.header) or "Spectrum")
    if len(curves) > 1:
        ax.legend(fontsize="small")
    return ax


def group_channels(channels: Table, exposure: float) -> Table:
    """A fit's per-channel table (CHANNEL, E_MIN, E_MAX, COUNTS, BACKGROUND, MODEL, VARIANCE,
    PLOT_GROUP) summed per plot group, as rates per keV: net data, its error (the model where
    a group has no variance), model, background, residual in sigma."""
    from astropy import units as u

    labels, slot = np.unique(np.asarray(channels["PLOT_GROUP"], int), return_inverse=True)

    def total(name: str) -> np.ndarray:
        return np.bincount(slot, weights=np.asarray(channels[name], float), minlength=labels.size)

    e_min = np.asarray(channels["E_MIN"], float)
    e_max = np.asarray(channels["E_MAX"], float)
    low = np.full(labels.size, np.inf)
    high = np.full(labels.size, -np.inf)
    np.minimum.at(low, slot, e_min)
    np.maximum.at(high, slot, e_max)
    width = (high - low) * exposure
    model = total("MODEL")
    variance = total("VARIANCE")
    error = np.sqrt(np.where(variance > 0, variance, model))
    net = total("COUNTS") - total("BACKGROUND")
    with np.errstate(divide="ignore", invalid="ignore"):
        residual = np.where(error > 0, (net - model) / error, np.nan)
    rate = u.ct / (u.s * u.keV)
    return Table({"E_MIN": low * u.keV, "E_MAX": high * u.keV, "DATA": net / width * rate,
                  "DATA_ERR": error / width * rate, "MODEL": model / width * rate,
                  "BACKGROUND": total("BACKGROUND") / width * rate, "RESIDUAL": residual})


def plot_fit(figure: Any, table: Table, header: fits.Header, **kwargs: Any) -> Any:
    """Data with errors and the folded model (and background) per plot group (`table` from
    `group_channels`), over residuals in sigma; the title gives the model and statistic."""
    if figure is None:
        figure = _pyplot().figure(figsize=(8, 6), layout="constrained")
    top, bottom = figure.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    e_lo, e_hi = np.asarray(table["E_MIN"], float), np.asarray(table["E_MAX"], float)
    centre, half = 0.5 * (e_lo + e_hi), 0.5 * (e_hi - e_lo)
    top.errorbar(centre, table["DATA"], xerr=half, yerr=table["DATA_ERR"], fmt=".", ms=3,
                 elinewidth=0.6, label="data", **kwargs)
    top.hlines(table["MODEL"], e_lo, e_hi, colors="tab:red", lw=1.5, label="model")
    top.plot(centre, table["MODEL"], color="tab:red", lw=0.6, alpha=0.6)
    background = np.asarray(table["BACKGROUND"], float)
    if np.any(background > 0):
        top.hlines(background, e_lo, e_hi, colors="0.5", lw=1, label="background")
    top.set_xscale("log")
    top.set_yscale("log", nonpositive="mask")
    top.set_ylabel(_unit_label(table, "DATA").replace("DATA", "Rate"))
    top.legend(fontsize="small")
    stat = header.get("STAT", "")
    title = f"{header.get('MODEL', 'fit')}{' (absorbed)' if header.get('ABSORBED') else ''}"
    if header.get("STATVAL") is not None:
        title += f": {stat} = {header['STATVAL']:.1f} / {header.get('DOF')} dof"
    top.set_title(" ".join(filter(None, [_title(header), title])))
    bottom.errorbar(centre, table["RESIDUAL"], xerr=half, yerr=np.ones(len(table)), fmt=".",
                    ms=3, elinewidth=0.6)
    bottom.axhline(0.0, color="tab:red", lw=1)
    bottom.set_ylabel("(data-model)/error")
    bottom.set_xlabel("Energy [keV]")
    return figure


# ---- images and catalogues -----------------------------------------------------------------
def catalog_coordinates(table: Table) -> Any:
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    from .products import column_name

    ra = table[column_name(table, *_RA_NAMES)]
    dec = table[column_name(table, *_DEC_NAMES)]
    return SkyCoord(np.asarray(ra, float) * (ra.unit or u.deg),
                    np.asarray(dec, float) * (dec.unit or u.deg), frame="icrs")


def _source_names(table: Table) -> list[str] | None:
    from .products import column_name

    name = column_name(table, "NAME", "SOURCE", "SRC_NAME", "OBJECT", required=False)
    return [str(v).strip() for v in table[name]] if name else None


def plot_image(ax: Any, hdu: fits.ImageHDU | fits.PrimaryHDU, catalog: Table | None = None,
               **kwargs: Any) -> Any:
    from astropy.visualization import simple_norm
    from astropy.wcs import WCS

    wcs = WCS(hdu.header).celestial
    data = np.asarray(hdu.data, float)
    while data.ndim > 2:
        data = data[0]
    if ax is None:
        figure = _pyplot().figure(figsize=(7, 6), layout="constrained")
        ax = figure.add_subplot(projection=wcs)
    finite = data[np.isfinite(data)]
    norm = simple_norm(finite, "sqrt", percent=99.5) if finite.size else None
    shown = ax.imshow(data, origin="lower", norm=norm, **{"cmap": "viridis", **kwargs})
    ax.figure.colorbar(shown, ax=ax, label=str(hdu.header.get("BUNIT", "")))
    if hasattr(ax, "coords"):
        ax.coords.grid(True, color="white", ls="dotted", alpha=0.5)
        for index in (0, 1):
            ctype = str(wcs.wcs.ctype[index]).split("-")[0].upper()
            ax.coords[index].set_axislabel(_AXIS_NAMES.get(ctype, ctype))
    if catalog is not None and len(catalog):
        coords = catalog_coordinates(catalog)
        transform = ax.get_transform("icrs") if hasattr(ax, "coords") else None
        options = {"s": 120, "facecolors": "none", "edgecolors": "red", "linewidths": 1.2}
        if transform is not None:
            options["transform"] = transform
        ax.scatter(coords.ra.deg, coords.dec.deg, **options)
        for name, ra, dec in zip(_source_names(catalog) or [], coords.ra.deg, coords.dec.deg):
            ax.annotate(name, (ra, dec), xycoords=transform or "data", color="red",
                        xytext=(6, 6), textcoords="offset points", fontsize="small")
    ax.set_title(_title(hdu.header) or "Image")
    return ax


def plot_catalog(ax: Any, table: Table, **kwargs: Any) -> Any:
    ax = _axes(ax)
    coords = catalog_coordinates(table)
    ax.scatter(coords.ra.deg, coords.dec.deg, **{"marker": "+", **kwargs})
    for name, ra, dec in zip(_source_names(table) or [], coords.ra.deg, coords.dec.deg):
        ax.annotate(name, (ra, dec), xytext=(4, 4), textcoords="offset points", fontsize="small")
    ax.invert_xaxis()
    ax.set_xlabel("RA (J2000) [deg]")
    ax.set_ylabel("Dec (J2000) [deg]")
    return ax


# ---- a whole collection --------------------------------------------------------------------
def plot_collection(collection: "ProductCollection", figsize: tuple[float, float] | None = None) -> Any:
    """One figure with a panel per thing worth seeing (see `ProductCollection.plot`)."""
    panels: list[tuple[str, Any]] = []
    if collection.of_kind("fit"):
        panels.append(("fit", collection.main("fit")))
    elif collection.of_kind("spectrum"):
        panels.append(("spectrum", collection.main("spectrum")))
    curves = collection.of_kind("lightcurve")
    combined = [c for c in curves if c.unit is None]
    if curves:
        panels.append(("lightcurve", (combined or curves)[:MAX_LIGHTCURVES]))
    if collection.of_kind("image"):
        panels.append(("image", collection.main("image")))
    elif collection.of_kind("catalog"):
        panels.append(("catalog", collection.main("catalog")))
    if not panels and collection.of_kind("gti"):
        panels.append(("gti", collection.main("gti")))
    if not panels:
        raise TypeError(f"nothing to plot among the kinds {', '.join(collection.kinds)}")

    heights = [2.0 if kind in ("fit", "image") else 1.0 for kind, _ in panels]
    figure = _pyplot().figure(figsize=figsize or (8, 3.6 * sum(heights)), layout="constrained")
    subfigures = figure.subfigures(len(panels), 1, height_ratios=heights, squeeze=False)[:, 0]
    for (kind, item), target in zip(panels, subfigures):
        if kind == "fit":
            item.plot(target)
        elif kind == "spectrum":
            item.plot(target.add_subplot(), response=collection._optional("rmf"),
                      background=collection._optional("background"))
        elif kind == "lightcurve":
            # Stage 1 (a `gti` product) gives the raw curves to judge the good time by: draw
            # the intervals over them.
            plot_lightcurves(target.add_subplot(), [(c.data, c.hdu.header, c.unit or c.name)
                                                    for c in item],
                             gtis=[(g.data, g.hdu.header) for g in collection.of_kind("gti")])
        elif kind == "image":
            item.plot(target.add_subplot(projection=item.wcs),
                      catalog=collection._optional("catalog"))
        else:
            item.plot(target.add_subplot())
    return figure
