"""The ME chain, one versioned step per HXMTDAS task, per exposure:

    mepical -> megrade -> megtigen -> megticorr -> mescreen -> melcgen / mespecgen
            -> merspgen -> mebkgmap

`hxmt_me.pical` (ADC channel -> PI, gain following the FPGA temperature), `hxmt_me.grade`
(dead time rebuilt from the events, 250 us per event per FPGA), `hxmt_me.gtigen`,
`hxmt_me.gticorr` (bad-detector status, particle flares), `hxmt_me.screen`, `hxmt_me.specgen`
/ `hxmt_me.lcgen` (dead-time corrected), `hxmt_me.rmfgen` + `hxmt_me.arfgen`,
`hxmt_me.bkgmap_spec` / `hxmt_me.bkgmap_lc` (blind ASICs 10, 28, 46 scaled to the selection,
the CXB, and the Am-241 lines of the calibration ASICs).
"""
from __future__ import annotations

from dataserver import Output, ogip, step
from plugins.hxmt import calib, pipeline as P, rsp
from plugins.hxmt import tasks_gti as gti_tasks
from plugins.hxmt import tasks_products as tasks
from plugins.hxmt.instrument import ME

PAYLOAD = "ME"


def _exposure(context, relative):
    return gti_tasks.exposure_at(context, relative)


@step(version=1, name="hxmt_me.pical", params={"exposure": P.EXPOSURE})
def pical(exposure: str, context) -> Output:
    """ADC channel -> PI of every ME event, with the gain at its FPGA's temperature."""
    source = _exposure(context, exposure)
    summary = calib.me_pical(source, context.output_path)
    return Output(None, {"exposure": source.exp_id, "payload": PAYLOAD, "rows": summary.rows,
                         "flagged": summary.flagged})


@step(version=1, name="hxmt_me.grade", inputs=["calibrated"], params={"exposure": P.EXPOSURE})
def grade(calibrated, exposure: str, context) -> Output:
    """megrade's dead-time table: 250 us per recorded event per FPGA and 1-s bin."""
    return Output(*gti_tasks.me_grade(_exposure(context, exposure), calibrated.path))


@step(version=1, name="hxmt_me.gtigen", params={"exposure": P.EXPOSURE, "expression": P.EXPRESSION})
def gtigen(exposure: str, expression: str, context) -> Output:
    """Good-time intervals from the EHK rows passing the expression, instrument on."""
    return Output(*gti_tasks.gtigen(PAYLOAD, _exposure(context, exposure), expression))


@step(version=1, name="hxmt_me.gticorr", inputs=["calibrated", "gti", "deadtime"], params={
    "exposure": P.EXPOSURE,
    "sigma": {"type": "number", "minimum": 1, "maximum": 100, "default": 5.0,
              "description": "flare threshold in sigma above the running median of the blind ASICs"},
    "flare_bin_s": {"type": "number", "minimum": 1, "maximum": 600, "default": 10.0, "unit": "s"},
    "status_emin_keV": {"type": "number", "minimum": 3, "maximum": 63, "default": 35.0, "unit": "keV"},
    "status_emax_keV": {"type": "number", "minimum": 3, "maximum": 63, "default": 63.0, "unit": "keV"},
    "status_sigma": {"type": "number", "minimum": 1, "maximum": 100, "default": 5.0},
    "status_tolerance": {"type": "number", "minimum": 0, "maximum": 1, "default": 0.2,
                         "description": "relative deviation tolerated on top of the statistics"}})
def gticorr(calibrated, gti, deadtime, exposure: str, sigma: float, flare_bin_s: float, status_emin_keV: float,
            status_emax_keV: float, status_sigma: float, status_tolerance: float, context) -> Output:
    """Bad-detector status of the ASICs and removal of particle flares from the GTI."""
    return Output(*gti_tasks.me_gticorr(
        _exposure(context, exposure), calibrated.path, gti.path, gti.meta, deadtime.path, sigma=sigma,
        flare_bin_s=flare_bin_s, status_band_keV=(status_emin_keV, status_emax_keV), status_sigma=status_sigma,
        status_tolerance=status_tolerance))


@step(version=1, name="hxmt_me.screen", inputs=["gti"], params={
    "exposure": P.EXPOSURE, "detectors": {**P.DETECTORS, "default": "0-53"}})
def screen(gti, exposure: str, detectors: str, context) -> Output:
    """Selection of the good events: GTI rows, detectors (minus bad ones from gticorr)."""
    return Output(*tasks.screen(PAYLOAD, _exposure(context, exposure), gti[0].path if gti else None,
                                detectors, tasks.reject_mask(PAYLOAD)))


@step(version=1, name="hxmt_me.specgen", inputs=["calibrated", "screened", "deadtime"], params={
    "exposure": P.EXPOSURE, "detectors": {**P.DETECTORS, "default": ME.standard_selection},
    "backfile": P.FILE, "respfile": P.FILE, "ancrfile": P.FILE})
def specgen(calibrated, screened, deadtime, exposure: str, detectors: str, backfile: str, respfile: str,
            ancrfile: str, context) -> Output:
    """Spectrum of the selected ASICs, dead-time corrected with the grade step's table."""
    source = _exposure(context, exposure)
    return Output(*tasks.specgen(PAYLOAD, source, calibrated.path, screened.path, P.live_table(PAYLOAD, source, deadtime),
                                 detectors, {"backfile": backfile, "respfile": respfile, "ancrfile": ancrfile}))


@step(version=1, name="hxmt_me.lcgen", inputs=["calibrated", "screened", "deadtime"], params={
    "exposure": P.EXPOSURE, "detectors": {**P.DETECTORS, "default": ME.standard_selection},
    "pi_min": {**P.PI, "maximum": 1023}, "pi_max": {**P.PI, "maximum": 1023}, "binsize": P.BINSIZE,
    "deadcorr": {"type": "boolean", "default": True}, "role": P.ROLE})
def lcgen(calibrated, screened, deadtime, exposure: str, detectors: str, pi_min: int, pi_max: int,
          binsize: float, deadcorr: bool, role: str, context) -> Output:
    """Light curve of the selected detectors in a PI range, dead-time corrected."""
    source = _exposure(context, exposure)
    return Output(*tasks.lcgen(PAYLOAD, source, calibrated.path, screened.path, P.live_table(PAYLOAD, source, deadtime),
                               detectors, (pi_min, pi_max), binsize, deadcorr, role))


@step(version=1, name="hxmt_me.rmfgen", params={"response_version": P.RESPONSE})
def rmfgen(response_version: int) -> Output:
    """The ME redistribution matrix (PI channels vs true energy) of the response model."""
    rmf = rsp.rmf_for(PAYLOAD)
    return Output(ogip.rmf_hdulist(rmf), {"payload": PAYLOAD, "channels": int(rmf.detchans),
                                          "energies": int(rmf.energ_lo.size), "response_version": response_version})


@step(version=1, name="hxmt_me.arfgen", inputs=["screened", "deadtime"], params={
    "exposure": P.EXPOSURE, "detectors": {**P.DETECTORS, "default": ME.standard_selection},
    "ra": P.RA, "dec": P.DEC})
def arfgen(screened, deadtime, exposure: str, detectors: str, ra: float, dec: float, context) -> Output:
    """Effective area of the selected detectors for a source at (ra, dec) over the good time."""
    source = _exposure(context, exposure)
    return Output(*tasks.arfgen(PAYLOAD, source, screened.path, P.live_table(PAYLOAD, source, deadtime), ra, dec, detectors))


@step(version=1, name="hxmt_me.bkgmap_spec", inputs=["spectrum", "screened"], params={"exposure": P.EXPOSURE})
def bkgmap_spec(spectrum, screened, exposure: str, context) -> Output:
    """Background spectrum: blind ASICs scaled to the selection, the CXB, the Am-241 lines."""
    return Output(*tasks.bkgmap_spec(PAYLOAD, _exposure(context, exposure), spectrum.path, screened.path))


@step(version=1, name="hxmt_me.bkgmap_lc", inputs=["lightcurve", "calibrated", "screened", "deadtime"], params={
    "exposure": P.EXPOSURE, "detectors": {**P.DETECTORS, "default": ME.standard_selection},
    "pi_min": {**P.PI, "maximum": 1023}, "pi_max": {**P.PI, "maximum": 1023}, "smooth_s": P.SMOOTH})
def bkgmap_lc(lightcurve, calibrated, screened, deadtime, exposure: str, detectors: str, pi_min: int, pi_max: int,
              smooth_s: float, context) -> Output:
    """Background light curve on the source light curve's bins (blind ASICs + CXB)."""
    source = _exposure(context, exposure)
    return Output(*tasks.bkgmap_lc(PAYLOAD, source, lightcurve.path, calibrated.path, screened.path,
                                   P.live_table(PAYLOAD, source, deadtime), detectors, (pi_min, pi_max), smooth_s))
