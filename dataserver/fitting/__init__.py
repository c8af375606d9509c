"""Spectral fitting: power law, cut-off power law and black body (XSPEC definitions, in
`dataserver.spectral_models`), optionally absorbed; C-stat, W-stat, PG-stat (a background
with Gaussian errors) or chi-square; sherpa by default, pyxspec when importable; and the
cached engine step `fitting.fit_spectrum`.
"""
from .backends import BACKENDS, resolve_backend, xspec_available
from .data import FitData, FitInputError, prepare
from .fit import fit_spectrum, starting_values
from .results import ChannelTable, FitResult, Flux, ParameterResult, PlotTable
from .step import FIT_PARAMETERS, fit_step, load_inputs

__all__ = [
    "BACKENDS", "resolve_backend", "xspec_available", "FitData", "FitInputError", "prepare",
    "fit_spectrum", "starting_values", "ChannelTable", "FitResult", "Flux", "ParameterResult",
    "PlotTable", "FIT_PARAMETERS", "fit_step", "load_inputs",
]
