"""Insight-HXMT LE: the xoda plugin of the Low Energy X-ray telescope (1-10 keV, 96 CCD236).

Products (see `plugins.hxmt.products`): `gti` (stage 1), `spectrum`, `lightcurve` (stage 2) and
`spectral_fit`; the chain of steps is in `plugins.hxmt_le.steps`.
"""
from plugins.hxmt.plugin import HxmtPayloadInstrument


class LEInstrument(HxmtPayloadInstrument, payload="LE"):
    """The LE payload plugin (`hxmt_le`)."""
