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

from dataserver import Output, step
from plugins.hxmt import calib, pipeline as P
from plugins.hxmt import tasks_gti as gti_tasks
from plugins.hxmt.payload_steps import calibration_step, product_steps

PAYLOAD = "ME"

pical = calibration_step(PAYLOAD, __name__, calib.me_pical)
gtigen, screen, specgen, lcgen, rmfgen, arfgen, bkgmap_spec, bkgmap_lc = product_steps(PAYLOAD, __name__)


@step(version=1, name="hxmt_me.grade", inputs=["calibrated"], params={"exposure": P.EXPOSURE})
def grade(calibrated, exposure: str, context) -> Output:
    """megrade's dead-time table: 250 us per recorded event per FPGA and 1-s bin."""
    return Output(*gti_tasks.me_grade(gti_tasks.exposure_at(context, exposure), calibrated.path))


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
        gti_tasks.exposure_at(context, exposure), calibrated.path, gti.path, gti.meta, deadtime.path, sigma=sigma,
        flare_bin_s=flare_bin_s, status_band_keV=(status_emin_keV, status_emax_keV), status_sigma=status_sigma,
        status_tolerance=status_tolerance))
