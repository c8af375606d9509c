"""What the three payload chains share at the level of steps and graphs.

- Parameter fragments of the steps (JSON Schema; they enter the steps' keys).
- `live_table`: the live fractions of a payload (HE-DTime, ME's grade product, LE none).
- `Chain`: how one payload's steps connect, per exposure (`ExposureRef`): calibrated events,
  dead time, good time (stage 1), selection, spectrum, light curve, responses and background
  (stage 2). Each payload package gives its steps to a `Chain`; `products` plans queries with
  it. The first step that reads an exposure's files is keyed on their fingerprint
  (`external`), and every step that reads the archive too, so new data make new keys.
"""
from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Sequence

from dataserver import Node

from . import common_steps
from .instrument import payload as payload_spec
from .livetime import LiveTable, he_live_table, me_live_table, unit_live_table
from .response import RESPONSE_VERSION
from .tasks_gti import span_of

EXPOSURE = {"type": "string", "minLength": 1, "maxLength": 500, "pattern": r"^[^/].*$",
            "description": "Exposure directory, relative to the archive root"}
EXPRESSION = {"type": "string", "minLength": 1, "maxLength": 2000,
              "description": "Screening expression over EHK/HK columns"}
DETECTORS = {"type": "string", "minLength": 1, "maxLength": 400,
             "description": "Detector IDs (e.g. 0-15,17) or a group name"}
FILE = {"type": "string", "maxLength": 200, "pattern": "^[A-Za-z0-9_.+-]+$"}
PI = {"type": "integer", "minimum": 0, "maximum": 1535}
BINSIZE = {"type": "number", "exclusiveMinimum": 0, "maximum": 1.0e6, "unit": "s"}
RA = {"type": "number", "minimum": 0, "exclusiveMaximum": 360, "unit": "deg"}
DEC = {"type": "number", "minimum": -90, "maximum": 90, "unit": "deg"}
ROLE = {"type": "string", "enum": ["source", "raw"], "default": "source"}
SMOOTH = {"type": "number", "minimum": 1, "maximum": 3600, "default": 64.0, "unit": "s",
          "description": "Good time over which the blind detectors' rate is averaged"}
RESPONSE = {"type": "integer", "minimum": 1, "default": RESPONSE_VERSION,
            "description": "Version of the response model"}


def live_table(payload: str, exposure, deadtime: Sequence[Any] = ()) -> LiveTable:
    """Live fraction per 1-s row and detector of an exposure."""
    if payload == "HE":
        return he_live_table(exposure)
    if payload == "ME":
        if not deadtime:
            raise ValueError("ME needs the dead-time table of the grade step")
        return me_live_table(deadtime[0].path)
    tstart, tstop = span_of(exposure)
    return unit_live_table(payload, tstart, tstop)


@dataclass(frozen=True)
class ExposureRef:
    """One exposure as a plan sees it."""

    exp_id: str
    relative: str                  # directory relative to the archive root
    fingerprint: str
    tstart: float
    tstop: float
    target: str = ""
    owner: str | None = None
    public_date: str | None = None

    @property
    def external(self) -> dict[str, str]:
        return {"exposure": self.exp_id, "fingerprint": self.fingerprint}


@dataclass(frozen=True)
class StageOne:
    calibrated: Node          # pical (HE, ME) or recon (LE) product
    deadtime: Node | None     # ME's grade product
    gti: Node                 # the screened good time (after gticorr for ME and LE)


class Chain:
    """The steps of one payload and how they connect (see the payload packages)."""

    def __init__(self, payload: str, steps: SimpleNamespace):
        self.payload = payload
        self.spec = payload_spec(payload)
        self.steps = steps

    # ---- stage 1 ----------------------------------------------------------------------------
    def stage_one(self, ref: ExposureRef, expression: str, intervals: Sequence[Sequence[float]] = ()) -> StageOne:
        s, unit, ext = self.steps, ref.exp_id, ref.external
        first = s.pical.node(unit=unit, external=ext, exposure=ref.relative)
        calibrated = s.recon.node(unit=unit, external=ext, pical=first, exposure=ref.relative) \
            if hasattr(s, "recon") else first
        deadtime = s.grade.node(unit=unit, external=ext, calibrated=calibrated, exposure=ref.relative) \
            if hasattr(s, "grade") else None
        gti = s.gtigen.node(unit=unit, external=ext, exposure=ref.relative, expression=expression)
        if hasattr(s, "gticorr"):
            extra = {"deadtime": deadtime} if deadtime is not None else {}
            gti = s.gticorr.node(unit=unit, external=ext, calibrated=calibrated, gti=gti, exposure=ref.relative,
                                 **extra)
        if intervals:
            gti = common_steps.gtiselect.node(unit=unit, gti=gti, intervals=[list(i) for i in intervals])
        return StageOne(calibrated, deadtime, gti)

    def _dead(self, stage: StageOne) -> list[Node]:
        return [stage.deadtime] if stage.deadtime is not None else []

    def screen(self, ref: ExposureRef, gti: Node | None) -> Node:
        return self.steps.screen.node(unit=ref.exp_id, external=ref.external, gti=[gti] if gti is not None else [],
                                      exposure=ref.relative)

    def lightcurve(self, ref: ExposureRef, stage: StageOne, screened: Node, detectors: str,
                   pi_range: tuple[int, int], binsize: float, role: str = "source") -> Node:
        return self.steps.lcgen.node(unit=ref.exp_id, external=ref.external, calibrated=stage.calibrated,
                                     screened=screened, deadtime=self._dead(stage), exposure=ref.relative,
                                     detectors=detectors, pi_min=int(pi_range[0]), pi_max=int(pi_range[1]),
                                     binsize=float(binsize), role=role)

    # ---- stage 2 ----------------------------------------------------------------------------
    def spectrum(self, ref: ExposureRef, stage: StageOne, screened: Node, detectors: str,
                 files: dict[str, str]) -> Node:
        return self.steps.specgen.node(unit=ref.exp_id, external=ref.external, calibrated=stage.calibrated,
                                       screened=screened, deadtime=self._dead(stage), exposure=ref.relative,
                                       detectors=detectors, **files)

    def rmf(self) -> Node:
        return self.steps.rmfgen.node()

    def arf(self, ref: ExposureRef, stage: StageOne, screened: Node, detectors: str, ra: float, dec: float) -> Node:
        return self.steps.arfgen.node(unit=ref.exp_id, external=ref.external, screened=screened,
                                      deadtime=self._dead(stage), exposure=ref.relative, detectors=detectors,
                                      ra=float(ra), dec=float(dec))

    def background_spectrum(self, ref: ExposureRef, spectrum: Node, screened: Node) -> Node:
        return self.steps.bkgmap_spec.node(unit=ref.exp_id, external=ref.external, spectrum=spectrum,
                                           screened=screened, exposure=ref.relative)

    def background_lightcurve(self, ref: ExposureRef, stage: StageOne, lightcurve: Node, screened: Node,
                              detectors: str, pi_range: tuple[int, int]) -> Node:
        return self.steps.bkgmap_lc.node(unit=ref.exp_id, external=ref.external, lightcurve=lightcurve,
                                         calibrated=stage.calibrated, screened=screened,
                                         deadtime=self._dead(stage), exposure=ref.relative, detectors=detectors,
                                         pi_min=int(pi_range[0]), pi_max=int(pi_range[1]))
