"""A test instrument with every kind of product the client handles, from known truth.

Registered by the client tests (never installed), next to the engine test instrument. It
speaks the shared parameter vocabulary (`dataserver.params`: RA/DEC, T1/T2 with a mission time
format, E1_keV/E2_keV, time_bin), so the client's conversions of Quantities and Times are
checked end to end:

- `spectrum`: a Poisson power-law spectrum (photon index `index`, exposure T2 - T1) through
  an HXMT-HE-like response, and that response (RMF + EBOUNDS + ARF) - `tests.fitting_simulation`;
- `spectral_fit`: the same plus the fit step of `dataserver.fitting` (parameters `model`,
  `stat`, `emin`, `emax`, ...);
- `lightcurve`: one data unit per `chunk_s` seconds of the time range, each a sinusoid of
  period `period` with Poisson noise, plus the curve of all units and the good-time intervals;
- `image`: a sky image (TAN projection, centred on RA/DEC) with a Gaussian source at RA/DEC,
  and a catalogue of that source.
"""
from __future__ import annotations

import hashlib
import math
from typing import Mapping, Sequence

import numpy as np
from astropy.io import fits
from astropy.time import Time
from astropy.wcs import WCS

from dataserver import Instrument, Output, Plan, PlanOutput, ProductType, QueryError, Unit, step
from dataserver import ogip
from dataserver import params as P
from dataserver.fitting import FIT_PARAMETERS, fit_step, resolve_backend
from tests import fitting_simulation as sim

TEST_MET = P.mission_time("test_met", mjdref=(55927, 7.6601852e-4), scale="tt", unit="s",
                          description="Test mission time: TT seconds since 2012-01-01T00:00:00 UTC")
MET_EPOCH = Time(55927, 7.6601852e-4, format="mjd", scale="tt")
MAX_EXPOSURE_S = 100_000.0


def _met(iso: str) -> float:
    """ISO UTC -> test mission time (TT seconds since MJDREF, as the light-curve headers say)."""
    return float((Time(iso, scale="utc").tt - MET_EPOCH).sec)


def _seed(*parts: object) -> int:
    return int(hashlib.sha256(repr(parts).encode()).hexdigest()[:8], 16)


@step(version=1, params={"t_start": {"type": "number"}, "t_stop": {"type": "number"},
                         "time_bin": {"type": "number"}, "period": {"type": "number"},
                         "rate": {"type": "number"}})
def make_lightcurve(t_start: float, t_stop: float, time_bin: float, period: float, rate: float,
                    context) -> Output:
    """A sinusoidally modulated Poisson light curve (mean `rate`, 30 % modulation)."""
    edges = t_start + time_bin * np.arange(int(round((t_stop - t_start) / time_bin)) + 1)
    centre = 0.5 * (edges[:-1] + edges[1:])
    expected = rate * (1 + 0.3 * np.sin(2 * math.pi * centre / period)) * time_bin
    counts = np.random.default_rng(_seed(context.unit, t_start)).poisson(expected)
    obs = ogip.ObsKeywords.hxmt("TEST", object="Test source").with_times(float(edges[0]),
                                                                         float(edges[-1]))
    curve = ogip.LightCurve(centre, counts / time_bin, np.sqrt(np.maximum(counts, 1)) / time_bin,
                            time_bin, obs=obs)
    return Output(ogip.lightcurve_hdulist(curve), {"bins": int(centre.size)})


@step(version=1, inputs=["curves"])
def join_lightcurves(curves) -> Output:
    joined = ogip.concatenate_lightcurves([ogip.read_lightcurve(c) for c in curves])
    return Output(ogip.lightcurve_hdulist(joined), {"bins": int(joined.time.size)})


@step(version=1, params={"starts": {"type": "array", "items": {"type": "number"}},
                         "stops": {"type": "array", "items": {"type": "number"}}})
def make_gti(starts: list, stops: list) -> Output:
    gti = ogip.Gti(np.array(starts), np.array(stops), obs=ogip.ObsKeywords.hxmt("TEST"))
    return Output(ogip.gti_hdulist(gti), {"exposure": gti.exposure})


@step(version=1, params={"ra": {"type": "number"}, "dec": {"type": "number"},
                         "pixels": {"type": "integer"}, "pixel_deg": {"type": "number"}})
def make_image(ra: float, dec: float, pixels: int, pixel_deg: float) -> Output:
    """Counts image with a Gaussian source at (ra, dec) on a flat background."""
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [ra, dec]
    wcs.wcs.crpix = [pixels / 2 + 0.5, pixels / 2 + 0.5]
    wcs.wcs.cdelt = [-pixel_deg, pixel_deg]
    y, x = np.mgrid[0:pixels, 0:pixels]
    source_x, source_y = wcs.world_to_pixel_values(ra, dec)
    mean = 2.0 + 400.0 * np.exp(-((x - source_x) ** 2 + (y - source_y) ** 2) / (2 * 2.0 ** 2))
    image = np.random.default_rng(_seed(ra, dec)).poisson(mean).astype(np.float32)
    hdu = fits.PrimaryHDU(image, header=wcs.to_header())
    hdu.header["BUNIT"] = "count"
    hdu.header["TELESCOP"] = "TEST"
    return Output(fits.HDUList([hdu]), {"peak": float(image.max())})


@step(version=1, params={"ra": {"type": "number"}, "dec": {"type": "number"}})
def make_catalog(ra: float, dec: float) -> Output:
    table = fits.BinTableHDU.from_columns([
        fits.Column(name="NAME", format="16A", array=["Test source"]),
        fits.Column(name="RA", format="D", unit="deg", array=[ra]),
        fits.Column(name="DEC", format="D", unit="deg", array=[dec]),
        fits.Column(name="FLUX", format="D", unit="counts/s", array=[12.5])], name="CATALOG")
    return Output(fits.HDUList([fits.PrimaryHDU(), table]), {"sources": 1})


def _common() -> dict:
    return {
        "src_name": P.src_name(default="Test source"),
        "RA": P.ra(default=83.633),
        "DEC": P.dec(default=22.0145),
        **P.time_range(default=("2018-01-01T00:00:00", "2018-01-01T00:30:00")),
        "T_format": P.time_format(TEST_MET),
    }


class ClientTestInstrument(Instrument):
    """Every product kind the client knows, made from injected truth."""

    name = "clienttest"
    title = "Client test instrument"
    mission = "Test"
    description = "Spectra with responses and fits, light curves, GTIs, images and catalogues."

    def step_modules(self) -> Sequence[str]:
        return (__name__, "tests.fitting_simulation", "dataserver.fitting.step")

    def products(self) -> Mapping[str, ProductType]:
        spectrum = {**_common(),
                    "index": {"type": "number", "minimum": 0.5, "maximum": 4.0, "default": 2.1,
                              "description": "Photon index of the simulated power law"}}
        lightcurve = {**_common(), **P.energy_range(minimum=10, maximum=400, default=(20, 100)),
                      "time_bin": P.time_bin(default=10.0, minimum=0.01, maximum=3600),
                      "period": {"type": "number", "exclusiveMinimum": 0, "default": 200.0,
                                 "unit": "s", "description": "Period of the modulation"},
                      "chunk_s": {"type": "number", "minimum": 60, "default": 600.0, "unit": "s",
                                  "description": "Length of one data unit"}}
        image = {"RA": P.ra(default=83.633), "DEC": P.dec(default=22.0145),
                 "pixels": {"type": "integer", "minimum": 16, "maximum": 256, "default": 64,
                            "description": "Image size in pixels"}}
        return {
            "spectrum": ProductType("spectrum", "Spectrum", "Power-law spectrum and response",
                                    spectrum, self._plan_spectrum),
            "spectral_fit": ProductType("spectral_fit", "Spectral fit",
                                        "Fit of the spectrum through its response",
                                        {**spectrum, **FIT_PARAMETERS}, self._plan_fit),
            "lightcurve": ProductType("lightcurve", "Light curve", "Modulated light curve",
                                      lightcurve, self._plan_lightcurve),
            "image": ProductType("image", "Sky image", "Image and source catalogue", image,
                                 self._plan_image),
        }

    @staticmethod
    def _exposure(params: Mapping) -> float:
        exposure = _met(params["T2"]) - _met(params["T1"])
        if exposure > MAX_EXPOSURE_S:
            raise QueryError("T2", f"the time range may span at most {MAX_EXPOSURE_S:g} s")
        return exposure

    def _spectrum_nodes(self, params: Mapping):
        unit = "S" + params["T1"][:10].replace("-", "")
        spectrum = sim.make_spectrum.node(unit=unit, payload="he", index=params["index"],
                                          norm=9.7, exposure=self._exposure(params),
                                          seed=_seed(params["T1"], params["T2"]))
        response = sim.make_response.node(unit=unit, payload="he")
        outputs = (PlanOutput("spectrum.pha", spectrum, "spectrum", "Source spectrum"),
                   PlanOutput("response.rsp", response, "rmf", "Response: RMF, EBOUNDS, ARF"))
        return outputs, spectrum, response, Unit(unit, label=f"observation {unit}")

    def _plan_spectrum(self, params: Mapping) -> Plan:
        outputs, _, _, unit = self._spectrum_nodes(params)
        return Plan(outputs, (unit,))

    def _plan_fit(self, params: Mapping) -> Plan:
        outputs, spectrum, response, unit = self._spectrum_nodes(params)
        fit_params = {name: params[name] for name in FIT_PARAMETERS}
        fit_params["backend"] = resolve_backend(fit_params["backend"])
        fit = fit_step.node(spectrum=spectrum, response=[response], background=[], **fit_params)
        return Plan(outputs + (PlanOutput("fit.fits", fit, "fit", "Power-law fit"),), (unit,))

    def _plan_lightcurve(self, params: Mapping) -> Plan:
        start, stop = _met(params["T1"]), _met(params["T1"]) + self._exposure(params)
        chunk = params["chunk_s"]
        bounds = [(t, min(t + chunk, stop)) for t in np.arange(start, stop, chunk)]
        curves, units = [], []
        for index, (lo, hi) in enumerate(bounds):
            name = f"C{index}"
            curves.append(make_lightcurve.node(unit=name, t_start=float(lo), t_stop=float(hi),
                                               time_bin=params["time_bin"], period=params["period"],
                                               rate=50.0 * (params["E2_keV"] - params["E1_keV"]) / 80))
            units.append(Unit(name, label=f"chunk {index}"))
        joined = join_lightcurves.node(curves=curves)
        gti = make_gti.node(starts=[float(b[0]) for b in bounds], stops=[float(b[1]) for b in bounds])
        outputs = [PlanOutput("lc_all.lc", joined, "lightcurve", "Light curve of all chunks"),
                   PlanOutput("gti.fits", gti, "gti", "Good-time intervals")]
        outputs += [PlanOutput(f"lc_{u.id}.lc", c, "lightcurve", f"Light curve of {u.label}")
                    for u, c in zip(units, curves)]
        return Plan(tuple(outputs), tuple(units))

    def _plan_image(self, params: Mapping) -> Plan:
        image = make_image.node(ra=params["RA"], dec=params["DEC"], pixels=params["pixels"],
                                pixel_deg=0.05)
        catalog = make_catalog.node(ra=params["RA"], dec=params["DEC"])
        return Plan((PlanOutput("image.fits", image, "image", "Counts image"),
                     PlanOutput("catalog.fits", catalog, "catalog", "Sources in the image")))
