"""The LE chain, one versioned step per HXMTDAS task, per exposure:

    lepical -> lerecon -> legtigen -> legticorr -> lescreen -> lelcgen / lespecgen
            -> lerspgen -> lebkgmap

`hxmt_le.pical` (ADC channel above the pedestal -> PI, gain following the box temperature),
`hxmt_le.recon` (detector, FOV class, forced triggers, box status), `hxmt_le.gtigen` (adds
DYE_ELV>30 to the screening), `hxmt_le.gticorr` (small- vs large-FOV comparison above 10 keV),
`hxmt_le.screen`, `hxmt_le.specgen` / `hxmt_le.lcgen` (LE has no dead time),
`hxmt_le.rmfgen` + `hxmt_le.arfgen`, `hxmt_le.bkgmap_spec` / `hxmt_le.bkgmap_lc` (the particle
model normalised by the blind CCDs, plus the CXB).
"""
from __future__ import annotations

from dataserver import Output, step
from plugins.hxmt import calib, pipeline as P
from plugins.hxmt import tasks_gti as gti_tasks
from plugins.hxmt.payload_steps import calibration_output, calibration_step, product_steps

PAYLOAD = "LE"

pical = calibration_step(PAYLOAD, __name__, calib.le_pical)
gtigen, screen, specgen, lcgen, rmfgen, arfgen, bkgmap_spec, bkgmap_lc = product_steps(PAYLOAD, __name__)


@step(version=1, name="hxmt_le.recon", inputs=["pical"], params={"exposure": P.EXPOSURE})
def recon(pical, exposure: str, context) -> Output:
    """Event reconstruction: detector, FOV class, forced triggers and box status per event."""
    source = gti_tasks.exposure_at(context, exposure)
    return calibration_output(PAYLOAD, source, calib.le_recon(source, pical.path, context.output_path))


@step(version=1, name="hxmt_le.gticorr", inputs=["calibrated", "gti"], params={
    "exposure": P.EXPOSURE,
    "sigma": {"type": "number", "minimum": 1, "maximum": 100, "default": 5.0,
              "description": "threshold of the small-FOV excess, in sigma"},
    "smooth_s": {"type": "number", "minimum": 1, "maximum": 3600, "default": 120.0, "unit": "s"},
    "emin_keV": {"type": "number", "minimum": 0.1, "maximum": 13.1, "default": 10.0, "unit": "keV"},
    "emax_keV": {"type": "number", "minimum": 0.1, "maximum": 13.1, "default": 13.1, "unit": "keV"},
    "edge_trim_s": {"type": "number", "minimum": 0, "maximum": 3600, "default": 0.0, "unit": "s"}})
def gticorr(calibrated, gti, exposure: str, sigma: float, smooth_s: float, emin_keV: float, emax_keV: float,
            edge_trim_s: float, context) -> Output:
    """legticorr: remove the seconds where small-FOV CCDs see more particles than large-FOV ones."""
    return Output(*gti_tasks.le_gticorr(gti_tasks.exposure_at(context, exposure), calibrated.path, gti.path, gti.meta,
                                        sigma=sigma, smooth_s=smooth_s, band_keV=(emin_keV, emax_keV),
                                        edge_trim_s=edge_trim_s))
