"""Insight-HXMT ME: the xoda plugin of the Medium Energy X-ray telescope (5-30 keV, 54 ASICs of Si-PIN pixels).

Products (see `plugins.hxmt.products`): `gti` (stage 1), `spectrum`, `lightcurve` (stage 2) and
`spectral_fit`; the chain of steps is in `plugins.hxmt_me.steps`.
"""
from plugins.hxmt.plugin import HxmtPayloadInstrument


class MEInstrument(HxmtPayloadInstrument):
    name = "hxmt_me"
    title = "Insight-HXMT ME"
    payload = "ME"
    steps_module = "plugins.hxmt_me.steps"
    description = ("Insight-HXMT ME: good-time intervals, spectra with background and responses, light curves "
                   "and spectral fits, reduced from the Level-1 archive as HXMTDAS does, per exposure and cached.")
