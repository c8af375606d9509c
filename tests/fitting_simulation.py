"""Test responses and Poisson spectra drawn from known models (injected truth).

Responses are built like real ones: a Gaussian redistribution whose FWHM grows as sqrt(E)
and a smooth effective area, on channel grids that follow the HXMT PI <-> energy relations.
Also engine steps that write such products, so the fit step can run through the engine.
"""
from __future__ import annotations

import numpy as np
from scipy.special import erf

from dataserver import Output, ogip, spectral_models, step

# (channels, E_min of channel 0, keV per channel, FWHM/E at the reference energy, reference
# energy, peak area cm2, energy of peak area, log-width of the area curve, response energy range)
PAYLOADS = {
    "he": dict(channels=256, e0=15.0, de=370.0 / 256, resolution=0.15, e_ref=60.0, area=5100.0,
               e_peak=60.0, width=0.9, energies=(10.0, 400.0)),
    "me": dict(channels=1024, e0=3.0, de=60.0 / 1024, resolution=0.17, e_ref=17.8, area=952.0,
               e_peak=15.0, width=0.7, energies=(2.0, 70.0)),
    "le": dict(channels=1536, e0=0.1, de=13.0 / 1536, resolution=0.10, e_ref=5.9, area=384.0,
               e_peak=5.0, width=1.0, energies=(0.5, 15.0)),
}


def response(payload: str = "he", energy_bins: int = 600, obs=None) -> tuple[ogip.Rmf, ogip.Arf]:
    """A realistic test response for one HXMT-like payload."""
    p = PAYLOADS[payload]
    edges = np.geomspace(*p["energies"], energy_bins + 1)
    e_lo, e_hi = edges[:-1], edges[1:]
    centre = np.sqrt(e_lo * e_hi)
    channel_edges = p["e0"] + p["de"] * np.arange(p["channels"] + 1)
    sigma = p["resolution"] * p["e_ref"] * np.sqrt(centre / p["e_ref"]) / 2.3548
    cdf = 0.5 * (1 + erf((channel_edges[None, :] - centre[:, None]) / (np.sqrt(2) * sigma[:, None])))
    matrix = np.diff(cdf, axis=1)
    area = p["area"] * np.exp(-0.5 * (np.log(centre / p["e_peak"]) / p["width"]) ** 2)
    obs = obs or ogip.ObsKeywords.hxmt(payload.upper())
    rmf = ogip.Rmf(e_lo, e_hi, matrix, channel_edges[:-1], channel_edges[1:], first_channel=0,
                   obs=obs)
    return rmf, ogip.Arf(e_lo, e_hi, area, obs=obs)


def expected_counts(model: str, params: dict, rmf: ogip.Rmf, arf: ogip.Arf | None,
                    exposure: float) -> np.ndarray:
    flux = spectral_models.photon_flux(model, params, rmf.energ_lo, rmf.energ_hi)
    if arf is not None:
        flux = flux * arf.specresp
    return exposure * flux @ rmf.matrix


def counts_spectrum(mean: np.ndarray, exposure: float, rng, *, kind: str = "TOTAL",
                    obs=None, backscal: float = 1.0) -> ogip.Spectrum:
    return ogip.Spectrum(channel=np.arange(mean.size), counts=rng.poisson(mean),
                         exposure=exposure, kind=kind, backscal=backscal,
                         obs=obs or ogip.ObsKeywords.hxmt("HE"))


@step(version=1, params={"payload": {"type": "string", "default": "he"}})
def make_response(payload: str) -> Output:
    """RMF and ARF in one product (both extensions, as an OGIP RSP pair)."""
    rmf, arf = response(payload)
    hdul = ogip.rmf_hdulist(rmf)
    hdul.append(ogip.arf_hdulist(arf)[1])
    return Output(hdul, {"payload": payload})


@step(version=1, params={"payload": {"type": "string", "default": "he"},
                         "index": {"type": "number"}, "norm": {"type": "number"},
                         "exposure": {"type": "number"}, "seed": {"type": "integer"}})
def make_spectrum(payload: str, index: float, norm: float, exposure: float, seed: int) -> Output:
    """A Poisson power-law spectrum through the test response."""
    rmf, arf = response(payload)
    mean = expected_counts("powerlaw", {"PhoIndex": index, "norm": norm}, rmf, arf, exposure)
    spectrum = counts_spectrum(mean, exposure, np.random.default_rng(seed))
    return Output(ogip.spectrum_hdulist(spectrum), {"counts": int(spectrum.counts.sum())})
