"""HXMT pipeline products: the output contract (kinds, names, metadata), the formats of the real
HXMTDAS products (checked against ../shared/data/real/hxmt_le/), readability by astropy and
sherpa, bad input refused by name, data rights carried by the plan's units, and the search."""
from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from dataserver import Identity, QueryError, ogip
from dataserver.params import InvalidParameters, normalise
from plugins.hxmt.parameters import LIGHTCURVE_GROUP
from tests.conftest import REAL_DATA
from tests.hxmt_pipeline_support import (BLANK, CEN, CEN_OWNER, CRAB_EXPOSURES, CRAB_HE_ONLY, hxmt_archive,  # noqa: F401
                                         hxmt_engine, hxmt_instruments, plan_of, run_plan)

REAL_LE = REAL_DATA / "hxmt_le"
REAL_GTI = REAL_LE / "P010131500201-20171031-01-01_LE_gti_pre.fits"
REAL_LC = REAL_LE / "P010131500201-20171031-01-01_LE_lc_ch106-1169_1s_g0_0-94_bkg.lc"
REAL_BKG = REAL_LE / "P010131500201-20171031-01-01_LE_spec_g0_0-94_bkg.pha.pha"
CONTRACT = {
    "gti": {"exposure", "payload", "intervals", "good_time_s", "span_s", "removed_s", "expression", "time_format",
            "mjdref"},
    "lightcurve": {"role", "exposure", "payload", "timedel_s", "emin_keV", "emax_keV", "n_bins", "mjdref"},
    "spectrum": {"exposure_s", "counts", "channels", "payload"},
}


def _columns(hdu) -> list[tuple[str, str]]:
    return [(c.name, c.format) for c in hdu.columns]


@pytest.fixture(scope="module")
def he_spectrum(hxmt_instruments, hxmt_engine):
    plan = plan_of(hxmt_instruments, "hxmt_he", "spectrum", exposures=list(CRAB_EXPOSURES))
    return plan, run_plan(hxmt_engine, plan)


def test_spectrum_outputs_follow_the_contract_and_name_their_siblings(he_spectrum):
    plan, products = he_spectrum
    kinds = {o.name: o.kind for o in plan.outputs}
    exposure = CRAB_EXPOSURES[0]
    assert kinds["HE_spec_combined.pha"] == "spectrum" and kinds["HE_bkg_combined.pha"] == "background"
    assert kinds["HE_combined.rmf"] == "rmf" and kinds["HE_combined.arf"] == "arf"
    assert {f"{exposure}_HE_spec.pha", f"{exposure}_HE_bkg.pha", f"{exposure}_HE.rmf", f"{exposure}_HE.arf"} <= set(kinds)
    for name in ("HE_spec_combined.pha", f"{exposure}_HE_spec.pha"):
        with fits.open(products[name].path) as hdul:
            header = hdul["SPECTRUM"].header
            for keyword in ("BACKFILE", "RESPFILE", "ANCRFILE"):
                assert header[keyword] in kinds, (name, keyword, header[keyword])
    for name, kind in kinds.items():
        if kind in ("spectrum", "background"):
            assert CONTRACT["spectrum"] <= set(products[name].meta), name
    combined = products["HE_spec_combined.pha"].meta
    assert combined["exposure"] == "combined" and combined["exposures"] == list(CRAB_EXPOSURES)
    singles = [products[f"{e}_HE_spec.pha"].meta for e in CRAB_EXPOSURES]
    assert combined["counts"] == sum(m["counts"] for m in singles)
    assert combined["exposure_s"] == pytest.approx(sum(m["exposure_s"] for m in singles))


@pytest.mark.real_data
def test_spectra_and_responses_have_the_ogip_layout_and_load_in_sherpa(he_spectrum):
    from sherpa.astro import io as sherpa_io

    _, products = he_spectrum
    with fits.open(products["HE_spec_combined.pha"].path) as hdul:
        hdul.verify("exception")
        spectrum = hdul["SPECTRUM"]
        assert [c.name for c in spectrum.columns][:2] == ["CHANNEL", "COUNTS"]
        assert spectrum.header["HDUCLAS1"] == "SPECTRUM" and spectrum.header["DETCHANS"] == 256
        assert spectrum.header["TELESCOP"] == "HXMT" and spectrum.header["INSTRUME"] == "HE"
        assert spectrum.header["MJDREFI"] == 55927 and spectrum.header["TIMESYS"] == "TT"
    with fits.open(products["HE_bkg_combined.pha"].path) as ours, fits.open(REAL_BKG) as real:
        mine, theirs = ours["SPECTRUM"], real["SPECTRUM"]
        assert [c.name for c in mine.columns] == [c.name for c in theirs.columns]   # CHANNEL RATE STAT_ERR ...
        for keyword in ("HDUCLAS3", "POISSERR", "CHANTYPE"):
            assert mine.header[keyword] == theirs.header[keyword], keyword
    with fits.open(products["HE_combined.rmf"].path) as hdul:
        assert [h.name for h in hdul[1:]] == ["MATRIX", "EBOUNDS"]
        assert np.allclose(hdul["EBOUNDS"].data["E_MIN"][:2], [15.0, 15.0 + 370 / 256])
    pha = sherpa_io.read_pha(str(products["HE_spec_combined.pha"].path), use_background=False)
    rmf = sherpa_io.read_rmf(str(products["HE_combined.rmf"].path))
    arf = sherpa_io.read_arf(str(products["HE_combined.arf"].path))
    bkg = sherpa_io.read_pha(str(products["HE_bkg_combined.pha"].path))
    assert pha.counts.sum() == products["HE_spec_combined.pha"].meta["counts"]
    assert rmf.detchans == 256 and arf.specresp.max() > 1000 and bkg.exposure == pytest.approx(pha.exposure)


@pytest.mark.real_data
@pytest.mark.parametrize("payload", ["HE", "ME", "LE"])
def test_lightcurves_and_gtis_have_the_real_hxmtdas_layout(payload, hxmt_instruments, hxmt_engine):
    instrument = f"hxmt_{payload.lower()}"
    exposure = CRAB_EXPOSURES[1]
    curves = run_plan(hxmt_engine, plan_of(hxmt_instruments, instrument, "lightcurve", exposures=[exposure]))
    gtis = run_plan(hxmt_engine, plan_of(hxmt_instruments, instrument, "gti", exposures=[exposure]))
    group = LIGHTCURVE_GROUP[payload]
    with fits.open(curves[f"{exposure}_{payload}_g0_{group}.lc"].path) as ours, fits.open(REAL_LC) as real:
        assert ours["RATE"].columns.names == real["RATE"].columns.names == ["Time", "RATE", "Error", "FRACEXP"]
        for keyword in ("HDUCLAS1", "TIMEDEL", "MJDREFI", "MJDREFF", "TELESCOP", "TIMEUNIT"):
            assert keyword in ours["RATE"].header, keyword
        assert ours["RATE"].header["MJDREFF"] == pytest.approx(real["RATE"].header["MJDREFF"])
    with fits.open(gtis[f"{exposure}_{payload}_gti.fits"].path) as ours, fits.open(REAL_GTI) as real:
        assert [h.name for h in ours[1:3]] == [h.name for h in real[1:]] == ["GTI0", "GTIDesc"]
        assert _columns(ours["GTI0"]) == _columns(real["GTI0"])
        assert _columns(ours["GTIDesc"]) == _columns(real["GTIDesc"])
    for role, suffix in (("source", ""), ("background", "_bkg"), ("net", "_net")):
        meta = curves[f"{exposure}_{payload}_g0_{group}{suffix}.lc"].meta
        assert CONTRACT["lightcurve"] <= set(meta) and meta["role"] == role and meta["exposure"] == exposure
        joined = curves[f"{payload}_g0_{group}{suffix}_combined.lc"].meta
        assert joined["exposure"] == "combined" and joined["role"] == role
    meta = gtis[f"{exposure}_{payload}_gti.fits"].meta
    assert CONTRACT["gti"] <= set(meta)
    assert meta["time_format"] == "hxmt_met" and meta["mjdref"] == pytest.approx(55927.00076601852)
    source = ogip.read_lightcurve(curves[f"{exposure}_{payload}_g0_{group}.lc"])
    net = ogip.read_lightcurve(curves[f"{exposure}_{payload}_g0_{group}_net.lc"])
    background = ogip.read_lightcurve(curves[f"{exposure}_{payload}_g0_{group}_bkg.lc"])
    assert np.allclose(net.rate, source.rate - background.rate)
    assert np.all(background.rate > 0) and np.all(source.fracexp > 0)


def test_the_fit_output_carries_the_fitting_modules_contract(hxmt_instruments, hxmt_engine):
    plan = plan_of(hxmt_instruments, "hxmt_he", "spectral_fit", exposures=[CRAB_EXPOSURES[0]])
    kinds = {o.name: o.kind for o in plan.outputs}
    assert kinds["HE_fit.fits"] == "fit" and kinds["HE_spec_combined.pha"] == "spectrum"
    products = run_plan(hxmt_engine, plan)
    meta = products["HE_fit.fits"].meta
    assert {"parameters", "stat", "dof", "goodness", "flux", "plot"} <= set(meta)
    assert [p["name"] for p in meta["parameters"]] == ["PhoIndex", "norm"]
    with fits.open(products["HE_fit.fits"].path) as hdul:
        assert {"FIT", "CHANNELS", "PLOT"} <= {h.name for h in hdul}
    assert plan.outputs[0].node.step.name == "fitting.fit_spectrum"


def test_the_flux_band_follows_the_fit_band_unless_given(hxmt_instruments):
    def fit_params(**values):
        node = plan_of(hxmt_instruments, "hxmt_he", "spectral_fit", exposures=[CRAB_EXPOSURES[0]],
                       **values).outputs[0].node
        return node.params["emin"], node.params["emax"], node.params["flux_emin"], node.params["flux_emax"]

    assert fit_params(E1_keV=30) == (30, 250, 30, 250)
    assert fit_params(E1_keV=30, flux_E1_keV=20, flux_E2_keV=100) == (30, 250, 20, 100)
    assert fit_params(E2_keV=200, flux_E1_keV=50) == (27, 200, 50, 200)


@pytest.mark.parametrize("instrument, product, values, parameter, reason", [
    ("hxmt_he", "spectrum", {"detectors": "0-15,19"}, "detectors", "IDs run from 0 to 17; got 19"),
    ("hxmt_me", "spectrum", {"detectors": "wide"}, "detectors", "bad detector list item 'wide'"),
    ("hxmt_le", "lightcurve", {"E1_keV": 0.05}, "E1_keV", "must be at least 0.1 keV"),
    ("hxmt_he", "lightcurve", {"E2_keV": 500}, "E2_keV", "must be at most 385.0 keV"),
    ("hxmt_me", "lightcurve", {"time_bin": 1e-4}, "time_bin", "must be at least 0.000255"),
    ("hxmt_he", "gti", {"gti_expression": "ELV>10&&FOO<1"}, "gti_expression", "unknown column FOO"),
    ("hxmt_le", "spectrum", {"gti_expression": "ELV>10&&(COR>8"}, "gti_expression", "expected ')'"),
    ("hxmt_me", "spectrum", {"exposures": [CRAB_HE_ONLY]}, "exposures", f"{CRAB_HE_ONLY} has no ME data"),
    ("hxmt_he", "spectrum", {"exposures": ["P099999999901"]}, "exposures", "no exposure P099999999901"),
    ("hxmt_he", "spectrum", {"T1": "2021-01-01T00:00:00", "T2": "2021-01-02T00:00:00"}, "T1", "at other times"),
    ("hxmt_he", "spectrum", {"RA": 10.0, "DEC": -40.0}, "RA", "no HE exposure is pointed within"),
    ("hxmt_he", "spectrum", {"gti_intervals": [[0, 100]]}, "gti_intervals", "overlap none of the selected"),
    ("hxmt_he", "spectrum", {"gti_intervals": [[200, 100]]}, "gti_intervals", "does not have start < stop"),
])
def test_bad_input_is_refused_naming_the_parameter(instrument, product, values, parameter, reason,
                                                   hxmt_instruments):
    ptype = hxmt_instruments[instrument].products()[product]
    with pytest.raises((QueryError, InvalidParameters)) as error:
        ptype.plan(normalise(ptype.schema(), values))
    if isinstance(error.value, QueryError):
        assert error.value.parameter == parameter and reason in error.value.reason, error.value
    else:
        assert [p.parameter for p in error.value.problems] == [parameter] and reason in str(error.value)


def test_an_empty_gti_is_reported_at_stage_one_and_fails_stage_two_leaving_no_entry(hxmt_instruments,
                                                                                   hxmt_engine):
    expression = "ELV>10&&ELV<0"
    stage_one = run_plan(hxmt_engine, plan_of(hxmt_instruments, "hxmt_he", "gti", exposures=[CRAB_EXPOSURES[0]],
                                              gti_expression=expression))
    meta = stage_one[f"{CRAB_EXPOSURES[0]}_HE_gti.fits"].meta
    assert meta["intervals"] == [] and meta["good_time_s"] == 0
    # Each criterion alone: ELV<0 holds only during the Earth occultation.
    assert meta["removed_s"]["ELV<0"] > meta["removed_s"]["ELV>10"] > 0
    plan = plan_of(hxmt_instruments, "hxmt_he", "spectrum", exposures=[CRAB_EXPOSURES[0]], gti_expression=expression)
    result = hxmt_engine.run(plan.targets)
    assert not result.ok
    failure = result.failures[0]
    assert failure["step"] == "hxmt_he.screen" and failure["unit"] == CRAB_EXPOSURES[0]
    assert f"exposure {CRAB_EXPOSURES[0]}: the good-time intervals are empty" in failure["message"]
    # Only the response matrix (which depends on no data) exists; nothing downstream of the
    # failure was stored, not even partly.
    stored = {o.kind for o in plan.outputs if hxmt_engine.store.contains(o.node.key)}
    assert stored <= {"rmf"}
    assert not hxmt_engine.store.contains(failure["key"])


def test_plan_units_carry_the_owner_public_date_and_grant_roles(hxmt_instruments):
    plan = plan_of(hxmt_instruments, "hxmt_le", "spectrum", exposures=[CEN, BLANK], RA=170.31288, DEC=-60.62379)
    units = {u.id: u for u in plan.units}
    assert units[CEN].owner == CEN_OWNER and units[CEN].public_date.startswith("2099-01-01")
    assert set(units[CEN].grant_roles) == {"admin", "hxmt_team"}
    assert units[BLANK].owner == "hxmt_cal" and units[BLANK].public_date is None
    assert not Identity().may_access(units[CEN].owner, units[CEN].public_date, units[CEN].grant_roles)
    assert Identity(CEN_OWNER).may_access(units[CEN].owner, units[CEN].public_date, units[CEN].grant_roles)


def test_exposures_are_found_by_position_and_time_and_keys_hold_no_absolute_path(hxmt_archive, hxmt_instruments):
    plan = plan_of(hxmt_instruments, "hxmt_he", "spectrum", T1="2017-08-27T00:00:00", T2="2017-08-28T00:00:00")
    assert [u.id for u in plan.units] == list(CRAB_EXPOSURES)
    assert [e["exp_id"] for e in plan.summary["exposures"]] == list(CRAB_EXPOSURES)
    from dataserver.steps import topological
    for node in topological(plan.targets):
        assert str(hxmt_archive.root) not in repr(node.params), node
        if node.step.name.endswith(".pical"):
            assert node.external["fingerprint"] and node.params["exposure"].startswith("P0101299/")


def test_search_lists_only_observations_with_the_payloads_data(hxmt_instruments):
    criteria = {"name": "Crab", "sort": "start", "order": "asc", "offset": 0, "limit": 50, "name_radius": 1.0}
    he = hxmt_instruments["hxmt_he"].search(criteria, Identity())
    le = hxmt_instruments["hxmt_le"].search(criteria, Identity())
    assert [r["obs_id"] for r in he["rows"]] == ["P0101299001", "P0101299002"]
    assert [r["obs_id"] for r in le["rows"]] == ["P0101299001"] and le["total"] == 1
    secret = hxmt_instruments["hxmt_me"].search({**criteria, "name": "Cen X-3"}, Identity())
    assert secret["total"] == 0
    assert hxmt_instruments["hxmt_me"].search({**criteria, "name": "Cen X-3"}, Identity(CEN_OWNER))["total"] == 1
