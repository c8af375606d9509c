"""The steps every payload chain has, made for one payload: pical, gtigen, screen, specgen,
lcgen, rmfgen, arfgen, bkgmap_spec and bkgmap_lc.

A payload's steps module binds them to its own names and adds the steps only it has (ME:
grade, gticorr; LE: recon, gticorr):

    pical = calibration_step("ME", __name__, calib.me_pical)
    gtigen, screen, specgen, lcgen, rmfgen, arfgen, bkgmap_spec, bkgmap_lc = product_steps("ME", __name__)

Each step is named `hxmt_<payload>.<task>` and belongs to the payload's module (`Step.module`),
where workers look it up. Name, version and parameters make its cache key; what they hold for
a payload comes from the payload's facts (`instrument.payload`: detectors, PI range) and from
the options a payload adds (HE's pulse-width window and screening classes). What the tasks do
differently per payload (dead time, calibration, background) is in `calib`, `tasks_gti`,
`tasks_products` and `pipeline.live_table`.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, NamedTuple, Sequence

from dataserver import Output, Step, ogip, step

from . import pipeline as P
from . import rsp
from . import tasks_gti as gti_tasks
from . import tasks_products as tasks
from .calib import PicalSummary
from .instrument import payload as payload_spec

# The same for every payload. bkgmap 2: the CXB's photon flux per response bin comes from
# `dataserver.spectral_models.integrate_density` (it changed by ~1e-8 relative). gtigen 2: a
# row with a missing (NaN) housekeeping value stays bad time under `!`.
VERSIONS: Mapping[str, int] = {"pical": 1, "gtigen": 2, "screen": 1, "specgen": 1, "lcgen": 1, "rmfgen": 1,
                               "arfgen": 1, "bkgmap_spec": 2, "bkgmap_lc": 2}

Schema = Mapping[str, Mapping[str, Any]]


class ProductSteps(NamedTuple):
    """The steps from the good time to the products, in the order a payload module binds them."""

    gtigen: Step
    screen: Step
    specgen: Step
    lcgen: Step
    rmfgen: Step
    arfgen: Step
    bkgmap_spec: Step
    bkgmap_lc: Step


def _declare(payload: str, module: str, task: str, run: Callable[..., Output], params: Schema,
             inputs: Sequence[str] = ()) -> Step:
    """`run` as the step `hxmt_<payload>.<task>` of `module`: the worker resolves a step in
    the module its function belongs to."""
    run.__module__ = module
    run.__name__ = run.__qualname__ = task
    return step(version=VERSIONS[task], name=f"hxmt_{payload.lower()}.{task}", params=params, inputs=inputs)(run)


def calibration_output(payload: str, exposure, summary: PicalSummary) -> Output:
    """What a calibration step (pical, LE's recon) returns: it wrote its columns itself."""
    return Output(None, {"exposure": exposure.exp_id, "payload": payload, "rows": summary.rows,
                         "flagged": summary.flagged})


def calibration_step(payload: str, module: str, calibrate: Callable[..., PicalSummary],
                     params: Schema | None = None) -> Step:
    """pical: `calibrate(exposure, output_path, **options)` writes the calibrated columns of
    every event (`calib`); `params` declares the payload's options."""

    def pical(exposure: str, context, **options) -> Output:
        """Channel -> PI of every event, with the payload's gains and flags (`calib`)."""
        source = gti_tasks.exposure_at(context, exposure)
        return calibration_output(payload, source, calibrate(source, context.output_path, **options))

    return _declare(payload, module, "pical", pical, {"exposure": P.EXPOSURE, **(params or {})})


def product_steps(payload: str, module: str, screen_params: Schema | None = None) -> ProductSteps:
    """The payload's gtigen, screen, specgen, lcgen, rmfgen, arfgen, bkgmap_spec and
    bkgmap_lc; `screen_params` are options of `tasks_products.reject_mask` (HE's)."""
    spec = payload_spec(payload)
    selection = {"exposure": P.EXPOSURE, "detectors": {**P.DETECTORS, "default": spec.standard_selection}}
    pi_range = {"pi_min": {**P.PI, "maximum": spec.pi.nchan - 1}, "pi_max": {**P.PI, "maximum": spec.pi.nchan - 1}}

    def gtigen(exposure: str, expression: str, context) -> Output:
        """Good-time intervals from the EHK (HE: and HE-PM) rows passing the expression, instrument on."""
        return Output(*gti_tasks.gtigen(payload, gti_tasks.exposure_at(context, exposure), expression))

    def screen(gti, exposure: str, detectors: str, context, **reject) -> Output:
        """Selection of the good events: GTI rows, detectors (minus bad ones), event classes."""
        return Output(*tasks.screen(payload, gti_tasks.exposure_at(context, exposure), gti[0].path if gti else None,
                                    detectors, tasks.reject_mask(payload, **reject)))

    def specgen(calibrated, screened, deadtime, exposure: str, detectors: str, backfile: str, respfile: str,
                ancrfile: str, context) -> Output:
        """Spectrum of the selected detectors, dead-time corrected."""
        source = gti_tasks.exposure_at(context, exposure)
        return Output(*tasks.specgen(payload, source, calibrated.path, screened.path,
                                     P.live_table(payload, source, deadtime), detectors,
                                     {"backfile": backfile, "respfile": respfile, "ancrfile": ancrfile}))

    def lcgen(calibrated, screened, deadtime, exposure: str, detectors: str, pi_min: int, pi_max: int,
              binsize: float, deadcorr: bool, role: str, context) -> Output:
        """Light curve of the selected detectors in a PI range, dead-time corrected."""
        source = gti_tasks.exposure_at(context, exposure)
        return Output(*tasks.lcgen(payload, source, calibrated.path, screened.path,
                                   P.live_table(payload, source, deadtime), detectors, (pi_min, pi_max), binsize,
                                   deadcorr, role))

    def rmfgen(response_version: int) -> Output:
        """The redistribution matrix (PI channels vs true energy) of the response model."""
        rmf = rsp.rmf_for(payload)
        return Output(ogip.rmf_hdulist(rmf), {"payload": payload, "channels": int(rmf.detchans),
                                              "energies": int(rmf.energ_lo.size),
                                              "response_version": response_version})

    def arfgen(screened, deadtime, exposure: str, detectors: str, ra: float, dec: float, response_version: int,
               context) -> Output:
        """Effective area of the selected detectors for a source at (ra, dec) over the good time."""
        source = gti_tasks.exposure_at(context, exposure)
        hdul, meta = tasks.arfgen(payload, source, screened.path, P.live_table(payload, source, deadtime), ra, dec,
                                  detectors)
        return Output(hdul, {**meta, "response_version": response_version})

    def bkgmap_spec(spectrum, screened, exposure: str, response_version: int, context) -> Output:
        """Background spectrum: the blind detectors' particle background, plus the CXB."""
        hdul, meta = tasks.bkgmap_spec(payload, gti_tasks.exposure_at(context, exposure), spectrum.path,
                                       screened.path)
        return Output(hdul, {**meta, "response_version": response_version})

    def bkgmap_lc(lightcurve, calibrated, screened, deadtime, exposure: str, detectors: str, pi_min: int,
                  pi_max: int, smooth_s: float, response_version: int, context) -> Output:
        """Background light curve on the source light curve's bins (blind detectors + CXB)."""
        source = gti_tasks.exposure_at(context, exposure)
        hdul, meta = tasks.bkgmap_lc(payload, source, lightcurve.path, calibrated.path, screened.path,
                                     P.live_table(payload, source, deadtime), detectors, (pi_min, pi_max), smooth_s)
        return Output(hdul, {**meta, "response_version": response_version})

    products = ["calibrated", "screened", "deadtime"]
    # Like the RMF, the effective area and the backgrounds (the CXB folded through the
    # response, ME's calibration lines) come from the response model: its version is in their keys.
    response = {"response_version": P.RESPONSE}
    return ProductSteps(
        gtigen=_declare(payload, module, "gtigen", gtigen, {"exposure": P.EXPOSURE, "expression": P.EXPRESSION}),
        screen=_declare(payload, module, "screen", screen, {
            "exposure": P.EXPOSURE, "detectors": {**P.DETECTORS, "default": f"0-{spec.n_detectors - 1}"},
            **(screen_params or {})}, inputs=["gti"]),
        specgen=_declare(payload, module, "specgen", specgen, {
            **selection, "backfile": P.FILE, "respfile": P.FILE, "ancrfile": P.FILE}, inputs=products),
        lcgen=_declare(payload, module, "lcgen", lcgen, {
            **selection, **pi_range, "binsize": P.BINSIZE, "deadcorr": {"type": "boolean", "default": True},
            "role": P.ROLE}, inputs=products),
        rmfgen=_declare(payload, module, "rmfgen", rmfgen, {"response_version": P.RESPONSE}),
        arfgen=_declare(payload, module, "arfgen", arfgen, {**selection, "ra": P.RA, "dec": P.DEC, **response},
                        inputs=["screened", "deadtime"]),
        bkgmap_spec=_declare(payload, module, "bkgmap_spec", bkgmap_spec, {"exposure": P.EXPOSURE, **response},
                             inputs=["spectrum", "screened"]),
        bkgmap_lc=_declare(payload, module, "bkgmap_lc", bkgmap_lc, {
            **selection, **pi_range, "smooth_s": P.SMOOTH, **response}, inputs=["lightcurve", *products]))
