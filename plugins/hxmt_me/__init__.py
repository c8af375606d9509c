"""Insight-HXMT ME: the xoda plugin of the Medium Energy X-ray telescope (5-30 keV, 54 ASICs of Si-PIN pixels).

Products (see `plugins.hxmt.products`): `gti` (stage 1), `spectrum`, `lightcurve` (stage 2) and
`spectral_fit`; the chain of steps is in `plugins.hxmt_me.steps`.
"""
from plugins.hxmt.plugin import HxmtPayloadInstrument


class MEInstrument(HxmtPayloadInstrument, payload="ME"):
    """The ME payload plugin (`hxmt_me`)."""
