"""OGIP FITS products shared by all instruments: spectra (PHA type I), responses (RMF, ARF),
light curves and good-time intervals, as small dataclasses with writers to astropy HDULists
and readers that find extensions by HDUCLAS1/HDUCLAS2 before names.

Writers default to the OGIP names and HXMTDAS layouts (HXMT keywords); every mission keyword
and extension name is an argument, so INTEGRAL products use the same code.
"""
from .keywords import (HXMT_MJDREFF, HXMT_MJDREFI, INTEGRAL_MJDREF, ObsKeywords, OgipFormatError,
                       find_hdu, opened)
from .responses import (Arf, Rmf, arf_hdulist, combine_responses, has_extension, read_arf,
                        read_rmf, rmf_hdulist)
from .spectra import Spectrum, read_spectrum, spectrum_hdulist, sum_spectra
from .timing import (Gti, LightCurve, concatenate_lightcurves, gti_hdulist, lightcurve_hdulist,
                     net_lightcurve, read_gti, read_lightcurve)

__all__ = [
    "HXMT_MJDREFF", "HXMT_MJDREFI", "INTEGRAL_MJDREF", "ObsKeywords", "OgipFormatError",
    "find_hdu", "opened", "Arf", "Rmf", "arf_hdulist", "combine_responses", "has_extension",
    "read_arf", "read_rmf", "rmf_hdulist", "Spectrum", "read_spectrum", "spectrum_hdulist",
    "sum_spectra", "Gti", "LightCurve", "concatenate_lightcurves", "gti_hdulist",
    "lightcurve_hdulist", "net_lightcurve", "read_gti", "read_lightcurve",
]
