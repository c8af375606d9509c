"""The HE chain, one versioned step per HXMTDAS task, per exposure:

    hepical -> hegtigen -> hescreen -> helcgen / hespecgen -> herspgen -> hebkgmap

`hxmt_he.pical` (Channel -> PI, NaI pulse-width window, ACD veto and calibration tags),
`hxmt_he.gtigen`, `hxmt_he.screen`, `hxmt_he.specgen` and `hxmt_he.lcgen` (dead time from
HE-DTime), `hxmt_he.rmfgen` + `hxmt_he.arfgen` (herspgen's response, split: the matrix is
common to all exposures), `hxmt_he.bkgmap_spec` / `hxmt_he.bkgmap_lc` (hebkgmap spec / lc:
blind detector 16 scaled to the selected detectors, plus the CXB).
"""
from __future__ import annotations

from dataserver import Output, ogip, step
from plugins.hxmt import calib, pipeline as P, rsp
from plugins.hxmt import tasks_gti as gti_tasks
from plugins.hxmt import tasks_products as tasks
from plugins.hxmt.instrument import HE, HE_NAI_PULSE_WIDTH

PAYLOAD = "HE"
_PULSE = {"type": "integer", "minimum": 0, "maximum": 255}


def _exposure(context, relative):
    return gti_tasks.exposure_at(context, relative)


@step(version=1, name="hxmt_he.pical", params={
    "exposure": P.EXPOSURE,
    "min_pulse_width": {**_PULSE, "default": HE_NAI_PULSE_WIDTH[0], "description": "hepical minpulsewidth"},
    "max_pulse_width": {**_PULSE, "default": HE_NAI_PULSE_WIDTH[1], "description": "hepical maxpulsewidth"}})
def pical(exposure: str, min_pulse_width: int, max_pulse_width: int, context) -> Output:
    """Channel -> PI of every HE event; flags CsI (pulse width), vetoed and calibration events."""
    source = _exposure(context, exposure)
    summary = calib.he_pical(source, context.output_path, min_pulse_width, max_pulse_width)
    return Output(None, {"exposure": source.exp_id, "payload": PAYLOAD, "rows": summary.rows,
                         "flagged": summary.flagged})


@step(version=1, name="hxmt_he.gtigen", params={"exposure": P.EXPOSURE, "expression": P.EXPRESSION})
def gtigen(exposure: str, expression: str, context) -> Output:
    """Good-time intervals from the EHK (and HE-PM) rows passing the expression, HV on."""
    return Output(*gti_tasks.gtigen(PAYLOAD, _exposure(context, exposure), expression))


@step(version=1, name="hxmt_he.screen", inputs=["gti"], params={
    "exposure": P.EXPOSURE, "detectors": {**P.DETECTORS, "default": "0-17"},
    "anticoincidence": {"type": "boolean", "default": True, "description": "drop ACD-vetoed events"},
    "exclude_calibration": {"type": "boolean", "default": True, "description": "drop tagged Am-241 events"}})
def screen(gti, exposure: str, detectors: str, anticoincidence: bool, exclude_calibration: bool, context) -> Output:
    """Selection of the good events: GTI rows, detectors, NaI, not vetoed, not calibration."""
    reject = tasks.reject_mask(PAYLOAD, anticoincidence, exclude_calibration)
    return Output(*tasks.screen(PAYLOAD, _exposure(context, exposure), gti[0].path if gti else None,
                                detectors, reject))


@step(version=1, name="hxmt_he.specgen", inputs=["calibrated", "screened", "deadtime"], params={
    "exposure": P.EXPOSURE, "detectors": {**P.DETECTORS, "default": HE.standard_selection},
    "backfile": P.FILE, "respfile": P.FILE, "ancrfile": P.FILE})
def specgen(calibrated, screened, deadtime, exposure: str, detectors: str, backfile: str, respfile: str,
            ancrfile: str, context) -> Output:
    """Spectrum of the selected detectors, dead-time corrected with HE-DTime."""
    source = _exposure(context, exposure)
    return Output(*tasks.specgen(PAYLOAD, source, calibrated.path, screened.path, P.live_table(PAYLOAD, source),
                                 detectors, {"backfile": backfile, "respfile": respfile, "ancrfile": ancrfile}))


@step(version=1, name="hxmt_he.lcgen", inputs=["calibrated", "screened", "deadtime"], params={
    "exposure": P.EXPOSURE, "detectors": {**P.DETECTORS, "default": HE.standard_selection},
    "pi_min": {**P.PI, "maximum": 255}, "pi_max": {**P.PI, "maximum": 255}, "binsize": P.BINSIZE,
    "deadcorr": {"type": "boolean", "default": True}, "role": P.ROLE})
def lcgen(calibrated, screened, deadtime, exposure: str, detectors: str, pi_min: int, pi_max: int,
          binsize: float, deadcorr: bool, role: str, context) -> Output:
    """Light curve of the selected detectors in a PI range, dead-time corrected."""
    source = _exposure(context, exposure)
    return Output(*tasks.lcgen(PAYLOAD, source, calibrated.path, screened.path, P.live_table(PAYLOAD, source),
                               detectors, (pi_min, pi_max), binsize, deadcorr, role))


@step(version=1, name="hxmt_he.rmfgen", params={"response_version": P.RESPONSE})
def rmfgen(response_version: int) -> Output:
    """The HE redistribution matrix (PI channels vs true energy) of the response model."""
    rmf = rsp.rmf_for(PAYLOAD)
    return Output(ogip.rmf_hdulist(rmf), {"payload": PAYLOAD, "channels": int(rmf.detchans),
                                          "energies": int(rmf.energ_lo.size), "response_version": response_version})


@step(version=1, name="hxmt_he.arfgen", inputs=["screened", "deadtime"], params={
    "exposure": P.EXPOSURE, "detectors": {**P.DETECTORS, "default": HE.standard_selection},
    "ra": P.RA, "dec": P.DEC})
def arfgen(screened, deadtime, exposure: str, detectors: str, ra: float, dec: float, context) -> Output:
    """Effective area of the selected detectors for a source at (ra, dec) over the good time."""
    source = _exposure(context, exposure)
    return Output(*tasks.arfgen(PAYLOAD, source, screened.path, P.live_table(PAYLOAD, source), ra, dec, detectors))


@step(version=1, name="hxmt_he.bkgmap_spec", inputs=["spectrum", "screened"], params={"exposure": P.EXPOSURE})
def bkgmap_spec(spectrum, screened, exposure: str, context) -> Output:
    """Background spectrum: blind detector 16 scaled to the selected detectors, plus the CXB."""
    return Output(*tasks.bkgmap_spec(PAYLOAD, _exposure(context, exposure), spectrum.path, screened.path))


@step(version=1, name="hxmt_he.bkgmap_lc", inputs=["lightcurve", "calibrated", "screened", "deadtime"], params={
    "exposure": P.EXPOSURE, "detectors": {**P.DETECTORS, "default": HE.standard_selection},
    "pi_min": {**P.PI, "maximum": 255}, "pi_max": {**P.PI, "maximum": 255}, "smooth_s": P.SMOOTH})
def bkgmap_lc(lightcurve, calibrated, screened, deadtime, exposure: str, detectors: str, pi_min: int, pi_max: int,
              smooth_s: float, context) -> Output:
    """Background light curve on the source light curve's bins (blind detector + CXB)."""
    source = _exposure(context, exposure)
    return Output(*tasks.bkgmap_lc(PAYLOAD, source, lightcurve.path, calibrated.path, screened.path,
                                   P.live_table(PAYLOAD, source), detectors, (pi_min, pi_max), smooth_s))
