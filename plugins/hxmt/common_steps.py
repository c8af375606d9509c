"""Steps shared by the three payload chains: the user's GTI intervals, net light curves, and
the combination of exposures (spectra summed with exposure-weighted responses, light curves
concatenated in time). Their inputs are products of the payload steps; they read no archive.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from dataserver import Output, ogip, step

from .tasks_gti import gtiselect as _gtiselect

_INTERVALS = {"type": "array", "minItems": 1, "maxItems": 1000, "unit": "s",
              "items": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2},
              "description": "Good-time intervals [start, stop] in HXMT MET seconds"}
_FILE = {"type": "string", "maxLength": 200, "pattern": "^[A-Za-z0-9_.+-]+$"}
_ROLE = {"type": "string", "enum": ["source", "background", "net", "raw"]}


@step(version=1, name="hxmt.gtiselect", inputs=["gti"], params={"intervals": _INTERVALS})
def gtiselect(gti, intervals) -> Output:
    """Intersect an exposure's screened good time with the user's intervals."""
    hdul, meta = _gtiselect(gti.path, gti.meta, intervals)
    return Output(hdul, meta)


def _spectra(products) -> list[ogip.Spectrum]:
    return [ogip.read_spectrum(p) for p in products]


def _combined_meta(spectrum: ogip.Spectrum, products, kind: str) -> dict[str, Any]:
    counts = spectrum.total_counts
    return {"exposure": "combined", "exposures": [p.meta.get("exposure") for p in products],
            "payload": products[0].meta.get("payload"), "exposure_s": spectrum.exposure,
            "counts": float(np.sum(counts)) if kind == "background" else int(np.sum(counts)),
            "channels": int(spectrum.channel.size)}


@step(version=1, name="hxmt.sum_spectra", inputs=["spectra", "backgrounds"],
      params={"backfile": _FILE, "respfile": _FILE, "ancrfile": _FILE})
def sum_spectra(spectra, backgrounds, backfile: str, respfile: str, ancrfile: str) -> Output:
    """Sum the exposures' spectra (counts and exposures add up); BACKFILE/RESPFILE/ANCRFILE
    name the combined background and responses."""
    total, _ = ogip.sum_spectra(_spectra(spectra), _spectra(backgrounds))
    total.backfile, total.respfile, total.ancrfile = backfile, respfile, ancrfile
    total.keywords.pop("EXP_ID", None)
    total.keywords["NEXPOSUR"] = len(spectra)
    return Output(ogip.spectrum_hdulist(total), _combined_meta(total, spectra, "spectrum"))


def _particle_norm_rel_error(backgrounds) -> float | None:
    """Relative error of the summed particle background's normalisation: each exposure's is
    independent (its own blind-detector counts), weighted by its particle counts. None when
    an exposure's background does not say."""
    counts, errors = [], []
    for product in backgrounds:
        particle = (product.meta.get("rate_components") or {}).get("particle")
        error, exposure = product.meta.get("particle_norm_rel_error"), product.meta.get("exposure_s")
        if particle is None or error is None or exposure is None:
            return None
        counts.append(particle * exposure)
        errors.append(error)
    total = float(np.sum(counts))
    return float(np.sqrt(np.sum((np.array(counts) * errors) ** 2)) / total) if total > 0 else 0.0


# Version 2: the normalisation error of the summed particle background (BKGNERR).
@step(version=2, name="hxmt.sum_backgrounds", inputs=["spectra", "backgrounds"])
def sum_backgrounds(spectra, backgrounds) -> Output:
    """Combine the exposures' background spectra so that the background expected in the
    summed spectrum is the sum of each exposure's."""
    _, background = ogip.sum_spectra(_spectra(spectra), _spectra(backgrounds))
    background.keywords.pop("EXP_ID", None)
    background.keywords["NEXPOSUR"] = len(spectra)
    meta = _combined_meta(background, spectra, "background")
    error = _particle_norm_rel_error(backgrounds)
    if error is not None:
        background.keywords["BKGNERR"] = error
        meta["particle_norm_rel_error"] = error
    return Output(ogip.spectrum_hdulist(background), meta)


@step(version=1, name="hxmt.combine_arfs", inputs=["arfs", "spectra"])
def combine_arfs(arfs, spectra) -> Output:
    """Exposure-weighted effective area, so that ARF x summed EXPOSURE is the sum of each
    exposure's ARF x EXPOSURE (the RMF is common to the exposures)."""
    exposures = np.array([ogip.read_spectrum(p).exposure for p in spectra])
    areas = [ogip.read_arf(p) for p in arfs]
    weights = exposures / exposures.sum()
    first = areas[0]
    for index, arf in enumerate(areas[1:], start=1):
        if arf.specresp.shape != first.specresp.shape or not np.allclose(arf.energ_lo, first.energ_lo):
            raise ValueError(f"ARF {index} has another energy grid than ARF 0")
    combined = ogip.Arf(first.energ_lo, first.energ_hi, sum(w * a.specresp for w, a in zip(weights, areas)),
                        obs=first.obs, keywords={k: v for k, v in first.keywords.items() if k != "SUMTRANS"})
    return Output(ogip.arf_hdulist(combined), {
        "exposure": "combined", "exposures": [p.meta.get("exposure") for p in arfs],
        "payload": arfs[0].meta.get("payload"), "weights": weights.tolist(),
        "exposure_s": float(exposures.sum()), "channels": int(first.specresp.size)})


@step(version=1, name="hxmt.net_lightcurve", inputs=["source", "background"])
def net_lightcurve(source, background) -> Output:
    """Background-subtracted light curve on the same bins (errors in quadrature)."""
    net = ogip.net_lightcurve(ogip.read_lightcurve(source), ogip.read_lightcurve(background))
    net.keywords["ROLE"] = "net"
    meta = {**source.meta, "role": "net", "mean_rate": float(np.mean(net.rate)) if net.rate.size else 0.0}
    meta.pop("counts", None)
    return Output(ogip.lightcurve_hdulist(net), meta)


@step(version=1, name="hxmt.concat_lightcurves", inputs=["curves"], params={"role": _ROLE})
def concat_lightcurves(curves, role: str) -> Output:
    """The exposures' light curves one after the other in time."""
    joined = ogip.concatenate_lightcurves([ogip.read_lightcurve(p) for p in curves])
    joined.keywords.pop("EXP_ID", None)
    first = curves[0].meta
    meta = {key: first.get(key) for key in ("payload", "timedel_s", "emin_keV", "emax_keV", "pi_min", "pi_max",
                                            "mjdref", "time_format", "detectors")}
    meta.update(role=role, exposure="combined", exposures=[p.meta.get("exposure") for p in curves],
                n_bins=int(joined.time.size),
                mean_rate=float(np.mean(joined.rate)) if joined.rate.size else 0.0)
    return Output(ogip.lightcurve_hdulist(joined), meta)
