"""The HE chain, one versioned step per HXMTDAS task, per exposure:

    hepical -> hegtigen -> hescreen -> helcgen / hespecgen -> herspgen -> hebkgmap

`hxmt_he.pical` (Channel -> PI, NaI pulse-width window, ACD veto and calibration tags),
`hxmt_he.gtigen`, `hxmt_he.screen`, `hxmt_he.specgen` and `hxmt_he.lcgen` (dead time from
HE-DTime), `hxmt_he.rmfgen` + `hxmt_he.arfgen` (herspgen's response, split: the matrix is
common to all exposures), `hxmt_he.bkgmap_spec` / `hxmt_he.bkgmap_lc` (hebkgmap spec / lc:
blind detector 16 scaled to the selected detectors, plus the CXB).
"""
from __future__ import annotations

from plugins.hxmt import calib
from plugins.hxmt.instrument import HE_NAI_PULSE_WIDTH
from plugins.hxmt.payload_steps import calibration_step, product_steps

PAYLOAD = "HE"
_PULSE = {"type": "integer", "minimum": 0, "maximum": 255}

# Channel -> PI; flags CsI events (pulse width outside the NaI window), vetoed and calibration events.
pical = calibration_step(PAYLOAD, __name__, calib.he_pical, params={
    "min_pulse_width": {**_PULSE, "default": HE_NAI_PULSE_WIDTH[0], "description": "hepical minpulsewidth"},
    "max_pulse_width": {**_PULSE, "default": HE_NAI_PULSE_WIDTH[1], "description": "hepical maxpulsewidth"}})

# hescreen keeps NaI events, and by default drops ACD-vetoed and tagged Am-241 events.
gtigen, screen, specgen, lcgen, rmfgen, arfgen, bkgmap_spec, bkgmap_lc = product_steps(PAYLOAD, __name__, {
    "anticoincidence": {"type": "boolean", "default": True, "description": "drop ACD-vetoed events"},
    "exclude_calibration": {"type": "boolean", "default": True, "description": "drop tagged Am-241 events"}})
