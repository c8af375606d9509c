"""Query parameters of the HXMT payload products, built with `dataserver.params` (the shared
vocabulary: src_name, RA/DEC, T1/T2 with T_format including HXMT MET, E1_keV/E2_keV,
time_bin) plus the HXMT ones: exposure selection, screening expression and intervals,
detector selection, PI range, spectral-fit settings.
"""
from __future__ import annotations

from typing import Any

from dataserver import params as P
from dataserver import spectral_models
from dataserver.fitting.data import STATISTICS

from .instrument import Payload

HXMT_MET = P.mission_time("hxmt_met", mjdref=(55927, 7.6601852e-4), scale="tt", unit="s",
                          description="Insight-HXMT mission time: TT seconds since 2012-01-01T00:00:00 UTC")
CRAB = (83.63308, 22.0145)
DEFAULT_TIME_RANGE = ("2017-08-27T00:00:00", "2017-08-28T00:00:00")
# Bands where each payload is calibrated best (reference §4: hxmtdap warns outside them).
SCIENCE_BANDS = {"HE": (27.0, 250.0), "ME": (10.0, 35.0), "LE": (1.0, 10.0)}
MAX_EXPOSURES = 50
LIGHTCURVE_GROUP = {"HE": "0-17", "ME": "0-53", "LE": "0-94"}     # HXMTDAS file-name suffix _g0_<group>


def selection_parameters(payload: Payload) -> dict[str, dict[str, Any]]:
    """Which exposures, which good time, which detectors: common to every product."""
    groups = ", ".join(payload.groups)
    return {
        "src_name": P.src_name(default="Crab"),
        "RA": P.ra(default=CRAB[0], description="Right ascension (J2000) of the source, in degrees: selects "
                   "the exposures pointed near it (unless `exposures` is given) and places it in the "
                   "collimators for the responses"),
        "DEC": P.dec(default=CRAB[1], description="Declination (J2000) of the source, in degrees (see RA)"),
        **P.time_range(default=DEFAULT_TIME_RANGE),
        "T_format": P.time_format(HXMT_MET),
        "radius": {"type": "number", "exclusiveMinimum": 0, "maximum": 10, "default": 1.0, "unit": "deg",
                   "title": "Search radius",
                   "description": "Without `exposures`: use every exposure pointed within this angle of RA/DEC "
                                  "that overlaps T1-T2"},
        "exposures": {"type": "array", "maxItems": MAX_EXPOSURES, "default": [], "title": "Exposures",
                      "items": {"type": "string", "pattern": "^P[0-9]{12}$"},
                      "description": "Exposure IDs (e.g. P010129900101) as picked from the observation search; "
                                     "empty: found from RA/DEC, radius and T1-T2"},
        "gti_expression": {"type": "string", "minLength": 1, "maxLength": 2000,
                           "default": payload.screening_expression, "title": "Screening expression",
                           "description": "Good-time criteria over EHK/HK columns: comparisons joined by &&, ||, ! "
                                          "and parentheses (HXMTDAS syntax); the default is HXMTDAS's"},
        "gti_intervals": {"type": "array", "maxItems": 1000, "default": [], "unit": "s", "title": "GTI intervals",
                          "items": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2},
                          "description": "Keep only these [start, stop] intervals (HXMT MET s) of the screened good "
                                         "time; empty: all of it"},
        "detectors": {"type": "string", "minLength": 1, "maxLength": 400, "default": payload.standard_selection,
                      "title": "Detectors",
                      "description": f"{payload.name} detector IDs (0-{payload.n_detectors - 1}, e.g. "
                                     f"{payload.standard_selection}) or a group: {groups}; default the HXMTDAS "
                                     "standard selection"},
    }


def energy_parameters(payload: Payload) -> dict[str, dict[str, Any]]:
    low, high = float(payload.pi.e_min), float(payload.pi.e_min + payload.pi.span)
    return {**P.energy_range(minimum=low, maximum=high, default=SCIENCE_BANDS[payload.name]),
            "PI_min": {"type": "integer", "minimum": 0, "maximum": payload.pi.nchan - 1, "title": "Lowest PI",
                       "description": "Lowest PI channel (with PI_max: replaces E1_keV/E2_keV)"},
            "PI_max": {"type": "integer", "minimum": 0, "maximum": payload.pi.nchan - 1, "title": "Highest PI",
                       "description": "Highest PI channel, inclusive (with PI_min)"}}


def time_bin_parameter(payload: Payload, default: float = 1.0) -> dict[str, Any]:
    fragment = P.time_bin(default, maximum=86400.0,
                          description=f"Width of the light-curve bins, in seconds (at least the {payload.name} "
                                      f"time resolution, {payload.time_resolution:g} s)")
    fragment["minimum"] = payload.time_resolution
    return fragment


def fit_parameters(payload: Payload) -> dict[str, dict[str, Any]]:
    low, high = float(payload.pi.e_min), float(payload.pi.e_min + payload.pi.span)
    band = SCIENCE_BANDS[payload.name]
    flux = {"type": "number", "minimum": low, "maximum": high, "unit": "keV"}
    return {
        "model": {"type": "string", "enum": list(spectral_models.MODELS), "default": "powerlaw", "title": "Model",
                  "description": "Spectral model (XSPEC definitions): powerlaw, cutoffpl, bbody, bbodyrad"},
        "absorbed": {"type": "boolean", "default": payload.name == "LE", "title": "Absorbed",
                     "description": "Multiply by photo-electric absorption (wabs; nH in 1e22 cm^-2)"},
        "statistic": {"type": "string", "enum": list(STATISTICS), "default": "auto", "title": "Statistic",
                      "description": "auto: C-stat (PG-stat with the model background) for counts; cstat; chi2"},
        **P.energy_range(minimum=low, maximum=high, default=band),
        # No default: the flux band follows the fit band unless given (a default of its own
        # would report the flux of another band than the one fitted).
        "flux_E1_keV": {**flux, "title": "Flux band low",
                        "description": "Lower bound of the energy-flux band, in keV; default E1_keV"},
        "flux_E2_keV": {**flux, "title": "Flux band high",
                        "description": "Upper bound of the energy-flux band, in keV; default E2_keV",
                        "x-greater-than": "flux_E1_keV"},
    }
