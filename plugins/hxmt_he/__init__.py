"""Insight-HXMT HE: the xoda plugin of the High Energy X-ray telescope (20-250 keV, 18 NaI/CsI phoswich detectors).

Products (see `plugins.hxmt.products`): `gti` (stage 1), `spectrum`, `lightcurve` (stage 2) and
`spectral_fit`; the chain of steps is in `plugins.hxmt_he.steps`.
"""
from plugins.hxmt.plugin import HxmtPayloadInstrument


class HEInstrument(HxmtPayloadInstrument, payload="HE"):
    """The HE payload plugin (`hxmt_he`)."""
