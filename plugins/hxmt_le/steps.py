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

from dataserver import Output, ogip, step
from plugins.hxmt import calib, pipeline as P, rsp
from plugins.hxmt import tasks_gti as gti_tasks
from plugins.hxmt import tasks_products as tasks
from plugins.hxmt.instrument import LE

PAYLOAD = "LE"


def _exposure(context, relative):
    return gti_tasks.exposure_at(context, relative)


@step(version=1, name="hxmt_le.pical", params={"exposure": P.EXPOSURE})
def pical(exposure: str, context) -> Output:
    """ADC channel -> PI of every LE event, with the gain at its box's temperature."""
    source = _exposure(context, exposure)
    summary = calib.le_pical(source, context.output_path)
    return Output(None, {"exposure": source.exp_id, "payload": PAYLOAD, "rows": summary.rows,
                         "flagged": summary.flagged})


@step(version=1, name="hxmt_le.recon", inputs=["pical"], params={"exposure": P.EXPOSURE})
def recon(pical, exposure: str, context) -> Output:
    """Event reconstruction: detector, FOV class, forced triggers and box status per event."""
    source = _exposure(context, exposure)
    summary = calib.le_recon(source, pical.path, context.output_path)
    return Output(None, {"exposure": source.exp_id, "payload": PAYLOAD, "rows": summary.rows,
                         "flagged": summary.flagged})


@step(version=1, name="hxmt_le.gtigen", params={"exposure": P.EXPOSURE, "expression": P.EXPRESSION})
def gtigen(exposure: str, expression: str, context) -> Output:
    """Good-time intervals from the EHK rows passing the expression, instrument on."""
    return Output(*gti_tasks.gtigen(PAYLOAD, _exposure(context, exposure), expression))


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
    return Output(*gti_tasks.le_gticorr(_exposure(context, exposure), calibrated.path, gti.path, gti.meta,
                                        sigma=sigma, smooth_s=smooth_s, band_keV=(emin_keV, emax_keV),
                                        edge_trim_s=edge_trim_s))


@step(version=1, name="hxmt_le.screen", inputs=["gti"], params={
    "exposure": P.EXPOSURE, "detectors": {**P.DETECTORS, "default": "0-95"}})
def screen(gti, exposure: str, detectors: str, context) -> Output:
    """Selection of the good events: GTI rows, detectors (no forced triggers, box on)."""
    return Output(*tasks.screen(PAYLOAD, _exposure(context, exposure), gti[0].path if gti else None,
                                detectors, tasks.reject_mask(PAYLOAD)))


@step(version=1, name="hxmt_le.specgen", inputs=["calibrated", "screened", "deadtime"], params={
    "exposure": P.EXPOSURE, "detectors": {**P.DETECTORS, "default": LE.standard_selection},
    "backfile": P.FILE, "respfile": P.FILE, "ancrfile": P.FILE})
def specgen(calibrated, screened, deadtime, exposure: str, detectors: str, backfile: str, respfile: str,
            ancrfile: str, context) -> Output:
    """Spectrum of the selected CCDs (LE has no dead time)."""
    source = _exposure(context, exposure)
    return Output(*tasks.specgen(PAYLOAD, source, calibrated.path, screened.path, P.live_table(PAYLOAD, source),
                                 detectors, {"backfile": backfile, "respfile": respfile, "ancrfile": ancrfile}))


@step(version=1, name="hxmt_le.lcgen", inputs=["calibrated", "screened", "deadtime"], params={
    "exposure": P.EXPOSURE, "detectors": {**P.DETECTORS, "default": LE.standard_selection},
    "pi_min": {**P.PI, "maximum": 1535}, "pi_max": {**P.PI, "maximum": 1535}, "binsize": P.BINSIZE,
    "deadcorr": {"type": "boolean", "default": True}, "role": P.ROLE})
def lcgen(calibrated, screened, deadtime, exposure: str, detectors: str, pi_min: int, pi_max: int,
          binsize: float, deadcorr: bool, role: str, context) -> Output:
    """Light curve of the selected detectors in a PI range, dead-time corrected."""
    source = _exposure(context, exposure)
    return Output(*tasks.lcgen(PAYLOAD, source, calibrated.path, screened.path, P.live_table(PAYLOAD, source),
                               detectors, (pi_min, pi_max), binsize, deadcorr, role))


@step(version=1, name="hxmt_le.rmfgen", params={"response_version": P.RESPONSE})
def rmfgen(response_version: int) -> Output:
    """The LE redistribution matrix (PI channels vs true energy) of the response model."""
    rmf = rsp.rmf_for(PAYLOAD)
    return Output(ogip.rmf_hdulist(rmf), {"payload": PAYLOAD, "channels": int(rmf.detchans),
                                          "energies": int(rmf.energ_lo.size), "response_version": response_version})


@step(version=1, name="hxmt_le.arfgen", inputs=["screened", "deadtime"], params={
    "exposure": P.EXPOSURE, "detectors": {**P.DETECTORS, "default": LE.standard_selection},
    "ra": P.RA, "dec": P.DEC})
def arfgen(screened, deadtime, exposure: str, detectors: str, ra: float, dec: float, context) -> Output:
    """Effective area of the selected detectors for a source at (ra, dec) over the good time."""
    source = _exposure(context, exposure)
    return Output(*tasks.arfgen(PAYLOAD, source, screened.path, P.live_table(PAYLOAD, source), ra, dec, detectors))


@step(version=1, name="hxmt_le.bkgmap_spec", inputs=["spectrum", "screened"], params={"exposure": P.EXPOSURE})
def bkgmap_spec(spectrum, screened, exposure: str, context) -> Output:
    """Background spectrum: the particle model normalised by the blind CCDs, plus the CXB."""
    return Output(*tasks.bkgmap_spec(PAYLOAD, _exposure(context, exposure), spectrum.path, screened.path))


@step(version=1, name="hxmt_le.bkgmap_lc", inputs=["lightcurve", "calibrated", "screened", "deadtime"], params={
    "exposure": P.EXPOSURE, "detectors": {**P.DETECTORS, "default": LE.standard_selection},
    "pi_min": {**P.PI, "maximum": 1535}, "pi_max": {**P.PI, "maximum": 1535}, "smooth_s": P.SMOOTH})
def bkgmap_lc(lightcurve, calibrated, screened, deadtime, exposure: str, detectors: str, pi_min: int, pi_max: int,
              smooth_s: float, context) -> Output:
    """Background light curve on the source light curve's bins (blind CCDs + CXB)."""
    source = _exposure(context, exposure)
    return Output(*tasks.bkgmap_lc(PAYLOAD, source, lightcurve.path, calibrated.path, screened.path,
                                   P.live_table(PAYLOAD, source), detectors, (pi_min, pi_max), smooth_s))
