"""The base of the three Insight-HXMT payload plugins (`hxmt_he`, `hxmt_me`, `hxmt_le`).

A payload plugin names its payload and the module holding its steps; this class gives it the
products (`products.Planner`), the observation search (`catalog.ObservationIndex`, built from
the archive on first use when absent) and the step modules its workers preload.
"""
from __future__ import annotations

import importlib
import logging
from types import SimpleNamespace
from typing import Any, ClassVar, Mapping, Sequence

from dataserver import Identity, Instrument, ProductType, Settings

from .catalog import SEARCH_PARAMETERS, ObservationIndex, default_index_path
from .instrument import payload as payload_spec
from .parameters import energy_parameters, fit_parameters, selection_parameters, time_bin_parameter
from .pipeline import Chain
from .products import Planner

log = logging.getLogger(__name__)

STEP_NAMES = ("pical", "recon", "grade", "gtigen", "gticorr", "screen", "specgen", "lcgen", "rmfgen", "arfgen",
              "bkgmap_spec", "bkgmap_lc")


class HxmtPayloadInstrument(Instrument):
    """An Insight-HXMT payload. A subclass names its payload,
    `class HEInstrument(HxmtPayloadInstrument, payload="HE")`, and gets the plugin name
    (`hxmt_he`), title, description and steps module (`plugins.hxmt_he.steps`) of it."""

    mission = "Insight-HXMT"
    payload: ClassVar[str]
    steps_module: ClassVar[str]

    def __init_subclass__(cls, payload: str | None = None, **kwargs: Any):
        super().__init_subclass__(**kwargs)
        if payload is not None:
            package = f"hxmt_{payload.lower()}"
            cls.payload, cls.name, cls.title = payload, package, f"Insight-HXMT {payload}"
            cls.steps_module = f"plugins.{package}.steps"
            cls.description = (f"{cls.title}: good-time intervals, spectra with background and responses, light "
                               "curves and spectral fits, reduced from the Level-1 archive as HXMTDAS does, per "
                               "exposure and cached.")

    def __init__(self, settings: Settings):
        super().__init__(settings)
        self._index: ObservationIndex | None = None
        self._planner: Planner | None = None

    # ---- archive index -----------------------------------------------------------------------
    def index(self) -> ObservationIndex:
        """The observation index of the archive (`XODA_HXMT_INDEX`); built from the archive the
        first time it is needed if the file does not exist (`xoda sim` builds it too)."""
        if self._index is None:
            path = default_index_path(self.settings)
            absent = not path.exists()
            index = ObservationIndex(path)
            if absent and self.settings.archive_path.is_dir():
                report = index.rescan(self.settings.archive_path)
                log.info("built the HXMT observation index %s: %d exposures, %d errors", path,
                         len(report.added), len(report.errors))
            self._index = index
        return self._index

    @classmethod
    def chain(cls) -> Chain:
        """The payload's steps, connected (see `pipeline.Chain`)."""
        module = importlib.import_module(cls.steps_module)
        steps = {name: getattr(module, name) for name in STEP_NAMES if hasattr(module, name)}
        return Chain(cls.payload, SimpleNamespace(**steps))

    def planner(self) -> Planner:
        if self._planner is None:
            self._planner = Planner(self.chain(), self.settings.archive_path, self.index)
        return self._planner

    # ---- the plugin interface ------------------------------------------------------------------
    def step_modules(self) -> Sequence[str]:
        return (self.steps_module, "plugins.hxmt.common_steps", "dataserver.fitting.step")

    def products(self) -> Mapping[str, ProductType]:
        spec = payload_spec(self.payload)
        planner = self.planner()
        selection = selection_parameters(spec)
        energy = energy_parameters(spec)
        time_bin = {"time_bin": time_bin_parameter(spec)}
        title = self.title
        return {
            "gti": ProductType(
                "gti", f"{title} good-time intervals (stage 1)",
                "Per exposure: the good-time intervals of the screening expression (and intervals), the total good "
                "time, the time each criterion removed, and the raw light curve to draw them over.",
                {**selection, **energy, **time_bin}, planner.plan_gti),
            "spectrum": ProductType(
                "spectrum", f"{title} spectrum with background and responses",
                "Per exposure and summed over the exposures: the source spectrum (OGIP PHA), its background, "
                "the redistribution matrix and the effective area at the source position.",
                selection, planner.plan_spectrum),
            "lightcurve": ProductType(
                "lightcurve", f"{title} light curve",
                "Per exposure and joined in time: source, background and net light curves of the selected "
                "detectors in an energy band, dead-time corrected.",
                {**selection, **energy, **time_bin}, planner.plan_lightcurve),
            "spectral_fit": ProductType(
                "spectral_fit", f"{title} spectral fit",
                "The spectrum summed over the exposures fitted with a power law, cut-off power law or black body "
                "(optionally absorbed): best fit, 1-sigma errors, goodness, energy flux, residuals.",
                {**selection, **fit_parameters(spec)}, planner.plan_fit),
        }

    def search_parameters(self) -> Mapping[str, Mapping[str, Any]]:
        return SEARCH_PARAMETERS

    def search(self, criteria: Mapping[str, Any], identity: Identity) -> Mapping[str, Any]:
        return self.index().search(criteria, identity, payload=self.payload)
