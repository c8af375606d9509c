"""The simulator writes the real Level-1 layout; the reader reads it back; the data carry the
injected physics (Crab rates, SAA, Earth occultation, pulsation)."""
import filecmp
import shutil

import numpy as np
import pytest
from astropy.io import fits

from plugins.hxmt import l1files
from plugins.hxmt.archive import Archive, ArchiveError
from plugins.hxmt.fitsio import FitsTable
from plugins.hxmt.instrument import HE, LE, ME, he_is_nai, me_detector
from plugins.hxmt.orbit import (EARTH_RADIUS_KM, Orbit, angle_between, barycentric_met, conjunction_mask,
                                in_polygon, intervals_of, unit_vector)
from plugins.hxmt.simulate import simulate_archive
from plugins.hxmt.skymodel import build_spec
from plugins.hxmt.timeconv import MJDREFF, MJDREFI, met_to_iso
from tests.conftest import REAL_DATA
from tests.hxmt_support import small_archive, truths  # noqa: F401  (fixture)

REAL_GTI = REAL_DATA / "hxmt_le" / "P010131500201-20171031-01-01_LE_gti_pre.fits"


@pytest.fixture(scope="module")
def archive(small_archive):  # noqa: F811
    return Archive(small_archive)


@pytest.fixture(scope="module")
def crab(archive):
    return [e for e in archive.exposures() if e.obs_id == "P0101299001"]


def _ehk(exposure):
    with exposure.table("EHK") as table:
        return table.read(list(table.columns))


def test_tree_and_file_names_are_those_of_real_1l_data(small_archive):  # noqa: F811
    exposure_dirs = sorted(p for p in small_archive.glob("P*/P*/P*") if p.is_dir())
    assert len(exposure_dirs) == 6
    for directory in exposure_dirs:
        assert l1files.EXPOSURE_DIR_PATTERN.match(directory.name)
        exp_id = directory.name.split("-")[0]
        assert directory.parent.name == exp_id[:11] and directory.parent.parent.name == exp_id[:8]
        for path in directory.rglob("*.FITS"):
            parsed = l1files.parse_file_name(path.name)
            assert parsed and parsed["id"] == exp_id and parsed["version"] == 1
            assert path.parent.name == l1files.SUBDIR[parsed["kind"].split("-")[0]]
    crab_dir = next(d for d in exposure_dirs if d.name.startswith("P010129900101"))
    names = {p.name for p in crab_dir.rglob("*.FITS")}
    assert names == {l1files.file_name("P010129900101", kind) for kind in l1files.FILE_KINDS}


def test_reader_round_trips_what_the_simulator_wrote(archive, small_archive):  # noqa: F811
    truth = truths(small_archive)
    exposures = archive.exposures()
    assert sorted(e.exp_id for e in exposures) == sorted(truth)
    for exposure in exposures:
        record = truth[exposure.exp_id]
        facts = exposure.header_facts()
        assert facts["OBJECT"] == record["target"]["name"]
        assert (facts["TSTART"], facts["TSTOP"]) == (record["tstart"], record["tstop"])
        assert facts["EXP_ID"] == exposure.name == record["exposure_dir"]
        assert set(exposure.payloads) == set(record["events"])
        for payload in exposure.payloads:
            time_column = "TIME" if payload == "LE" else "Time"
            with exposure.events(payload) as table:
                assert len(table) == record["events"][payload]["written"]
                full = table.read([time_column])[time_column]
            chunks = np.concatenate([c[time_column] for c in exposure.iter_events(payload, [time_column], 100_000)])
            assert np.array_equal(full, chunks)
            assert np.all(np.diff(full) >= 0), "event files are time-ordered"
            assert full[0] >= record["tstart"] and full[-1] < record["tstop"]


def test_event_columns_and_headers_match_the_reference(crab):
    exposure = crab[0]
    expected = {"HE": [("Time", "1D"), ("Det_ID", "1B"), ("Channel", "1B"), ("Pulse_Width", "1B"), ("ACD", "18X"),
                       ("Event_Type", "1B"), ("Flag", "1B")],
                "ME": [("Time", "1D"), ("FPGA_ID", "1B"), ("ASIC_ID", "1B"), ("Channel", "1I"), ("Event_Type", "1B")],
                "LE": [("TIME", "1D"), ("Det_ID", "1B"), ("Channel", "1I"), ("Event_Type", "1B"), ("DetBox", "1B")]}
    for payload, columns in expected.items():
        with fits.open(exposure.file(f"{payload}-Evt")) as hdul:
            hdul.verify("exception")
            table = hdul[1]
            assert table.header["EXTNAME"] == "Events"
            assert [(c.name, c.format) for c in table.columns] == columns
            assert table.header["INSTRUME"] == payload and hdul[0].header["TELESCOP"] == "HXMT"
            data = table.data
            for column, low, high in l1files.EVENT_LIMITS[payload]:
                assert data[column].min() >= low and data[column].max() <= high
    he = FitsTable(exposure.file("HE-Evt"), "Events").read(["Det_ID", "Pulse_Width", "Event_Type"])
    assert set(np.unique(he["Event_Type"])) == {0, 1}
    assert np.all(he_is_nai(he["Pulse_Width"][he["Event_Type"] == 1]))
    le = FitsTable(exposure.file("LE-Evt"), "Events").read(["TIME", "Event_Type"])
    assert np.allclose(le["TIME"] * 1024, np.round(le["TIME"] * 1024))        # 1/1024 s frames


@pytest.mark.real_data
def test_time_keywords_in_every_hdu_match_the_real_products(crab):
    with fits.open(REAL_GTI) as real:
        real_names = [(h.name, [(c.name, c.format, c.unit) for c in h.columns]) for h in real[1:]]
    for exposure in crab:
        for ref in exposure.files.values():
            with fits.open(ref.path) as hdul:
                for hdu in hdul:
                    header = hdu.header
                    assert (header["TIMESYS"], header["MJDREFI"], header["MJDREFF"], header["TIMEUNIT"]) == \
                        ("TT", MJDREFI, MJDREFF, "s"), (ref.path.name, hdu.name)
                    assert header["DATE-OBS"] == met_to_iso(header["TSTART"], precision=0)
        for payload in ("HE", "ME", "LE"):
            with fits.open(exposure.path / "SIM" / f"gti_{payload}.fits") as gti:
                assert [(h.name, [(c.name, c.format, c.unit) for c in h.columns]) for h in gti[1:]] == real_names
                assert len(gti["GTIDesc"].data) == {"HE": 18, "ME": 54, "LE": 96}[payload]


def test_housekeeping_attitude_orbit_and_ehk_layouts(crab):
    exposure = crab[0]
    with fits.open(exposure.file("EHK")) as hdul:
        names = hdul[1].columns.names
    for index, name in {0: "TIME", 7: "SAT_ALT", 8: "SAT_LON", 9: "SAT_LAT", 10: "ELV", 11: "DYE_ELV",
                        19: "ANG_DIST", 20: "COR", 22: "SAA_FLAG", 25: "SUN_ANG", 26: "MOON_ANG"}.items():
        assert names[index] == name
    assert {"NTE_ELV", "COR2", "T_SAA", "TN_SAA", "FOC_RA", "FOC_DEC", "FOC_ROLL"} <= set(names)
    with fits.open(exposure.file("HE-DTime")) as hdul:
        columns = hdul[1].columns
        assert columns.names[0] == "Time" and columns[1].format == "3J"
        assert columns.names[2:] == [f"DeadTime_PHODet_{d}" for d in range(18)]
    with fits.open(exposure.file("HE-PM")) as hdul:
        assert hdul[1].columns.names == ["Time", "Cnt_PM_0", "Cnt_PM_1", "Cnt_PM_2"]
    with fits.open(exposure.file("ME-TH")) as hdul:
        assert hdul[2].columns.names[1] == "Temp_fpga0_0"           # mebkgmap reads HDU 2, column 1
    with fits.open(exposure.file("Att")) as hdul:
        assert [h.header["EXTNAME"] for h in hdul[1:]] == ["ATT_Pointing", "ATT_Euler", "ATT_Quater", "ATT_Omega"]
        assert hdul[1].columns.names == ["Time", "Ra", "Dec", "Delta_Ra", "Delta_Dec", "Delta"]
        assert hdul[3].columns.names == ["Time", "Q1", "Q2", "Q3"]
        quaternion = np.column_stack([hdul[3].data[q] for q in ("Q1", "Q2", "Q3")])
        assert np.all(np.sum(quaternion ** 2, axis=1) <= 1.0)
    with fits.open(exposure.file("Orbit")) as hdul:
        orbit = hdul[1].data
        assert hdul[1].columns.names == ["Time", "X", "Y", "Z", "Vx", "Vy", "Vz", "Lon", "Lat", "Alt"]
        radius = np.sqrt(orbit["X"] ** 2 + orbit["Y"] ** 2 + orbit["Z"] ** 2)
        assert np.allclose(radius, (EARTH_RADIUS_KM + 550.0) * 1e3) and np.allclose(orbit["Alt"], 550e3)
    ehk = _ehk(exposure)
    assert np.array_equal(ehk["TIME"], orbit["Time"]) and np.allclose(ehk["SAT_LON"], orbit["Lon"])
    dead = FitsTable(exposure.file("HE-DTime")).read(["DeadTime_PHODet_0"])["DeadTime_PHODet_0"]
    assert 0 <= dead.max() < 2e4 and dead.mean() > 0


def _good_mask(exposure, payload, times):
    ehk = _ehk(exposure)
    good = conjunction_mask(ehk, {"HE": HE, "ME": ME, "LE": LE}[payload].screening_expression)
    rows = np.floor(times - ehk["TIME"][0] + 0.5).astype(int)
    return good[rows], float(good.sum())


def test_simulated_crab_rates_are_within_20_percent_of_the_reference(crab):
    """Reference §10 (Crab, P010129900101, screened, no dead-time correction): HE ~675 cts/s
    over the 15 small-FOV detectors (minus the blind detector), ME ~280 cts/s over the 39
    small-FOV ASICs (minus the blind ASICs), LE ~12.5k screened events per small-FOV CCD in
    ~0.9 ks, i.e. ~13.9 cts/s per CCD."""
    counts = {p: None for p in ("HE", "ME", "LE")}
    good_time = {p: 0.0 for p in counts}
    for exposure in crab:
        he = exposure.events("HE").read(["Time", "Det_ID", "Pulse_Width", "ACD", "Event_Type"])
        good, seconds = _good_mask(exposure, "HE", he["Time"])
        keep = good & he_is_nai(he["Pulse_Width"]) & (he["ACD"].sum(axis=1) == 0) & (he["Event_Type"] == 0)
        counts["HE"] = np.bincount(he["Det_ID"][keep], minlength=18) + (0 if counts["HE"] is None else counts["HE"])
        good_time["HE"] += seconds
        me = exposure.events("ME").read(["Time", "FPGA_ID", "ASIC_ID"])
        good, seconds = _good_mask(exposure, "ME", me["Time"])
        det = me_detector(me["FPGA_ID"], me["ASIC_ID"])[good]
        counts["ME"] = np.bincount(det, minlength=54) + (0 if counts["ME"] is None else counts["ME"])
        good_time["ME"] += seconds
        le = exposure.events("LE").read(["TIME", "Det_ID", "Event_Type"])
        good, seconds = _good_mask(exposure, "LE", le["TIME"])
        det = le["Det_ID"][good & (le["Event_Type"] == 0)]
        counts["LE"] = np.bincount(det, minlength=96) + (0 if counts["LE"] is None else counts["LE"])
        good_time["LE"] += seconds
    assert min(good_time.values()) > 300
    rate = {p: counts[p] / good_time[p] for p in counts}
    he_crab = (rate["HE"][list(HE.groups["small"])].mean() - rate["HE"][16]) * 15
    me_crab = (rate["ME"][list(ME.groups["small"])].mean() - rate["ME"][list(ME.groups["blind"])].mean()) * 39
    le_ccd = rate["LE"][list(LE.groups["small"])].mean()
    assert he_crab == pytest.approx(675.0, rel=0.2)
    assert me_crab == pytest.approx(280.0, rel=0.2)
    assert le_ccd == pytest.approx(12.5e3 / 900.0, rel=0.2)
    # Blind detectors see the particle background of the reference (HE 27.7, ME 5.8 cts/s).
    assert rate["HE"][16] == pytest.approx(27.7, rel=0.3)
    assert rate["ME"][list(ME.groups["blind"])].mean() == pytest.approx(5.8, rel=0.3)


def test_saa_passages_are_where_the_orbit_puts_them(crab, small_archive):  # noqa: F811
    truth = truths(small_archive)
    exposure = next(e for e in crab if truth[e.exp_id]["intervals"]["saa"])
    record = truth[exposure.exp_id]
    ehk = _ehk(exposure)
    flag = ehk["SAA_FLAG"] == 1
    assert np.array_equal(flag, in_polygon(ehk["SAT_LON"], ehk["SAT_LAT"])) and flag.sum() >= 30
    assert intervals_of(flag, ehk["TIME"], clip=(record["tstart"], record["tstop"])) == record["intervals"]["saa"]
    rows_in_saa = set(np.flatnonzero(flag))
    for payload in ("HE", "ME", "LE"):
        times = exposure.events(payload).read(["TIME"])["TIME"]
        rows = np.floor(times - ehk["TIME"][0] + 0.5).astype(int)
        assert not rows_in_saa & set(rows.tolist()), f"{payload} events inside the SAA (high voltage off)"
    status = FitsTable(exposure.file("HE-InsStat")).read(["Status_Box_0"])["Status_Box_0"]
    assert np.array_equal(status == 0, flag)
    assert np.all(ehk["T_SAA"][flag] == 0) and np.all(ehk["TN_SAA"][flag] == 0)
    assert record["good_time"]["HE"]["removed_by_criterion"]["SAA_FLAG==0"] == pytest.approx(flag.sum())


def test_earth_occultation_hides_the_source(crab, small_archive):  # noqa: F811
    truth = truths(small_archive)
    exposure = next(e for e in crab if truth[e.exp_id]["intervals"]["earth_occultation"])
    ehk = _ehk(exposure)
    position = np.column_stack([ehk["SAT_X"], ehk["SAT_Y"], ehk["SAT_Z"]])
    r = np.linalg.norm(position, axis=1)
    elv = angle_between(unit_vector(ehk["FOC_RA"], ehk["FOC_DEC"]), -position / r[:, None]) - \
        np.degrees(np.arcsin(EARTH_RADIUS_KM / r))
    assert np.allclose(elv, ehk["ELV"], atol=1e-9)
    hidden = (ehk["ELV"] < -2) & (ehk["SAA_FLAG"] == 0)
    visible = (ehk["ELV"] > 2) & (ehk["SAA_FLAG"] == 0)
    assert hidden.sum() > 30 and visible.sum() > 30
    he = exposure.events("HE").read(["Time", "Det_ID", "Pulse_Width", "ACD", "Event_Type"])
    rows = np.floor(he["Time"] - ehk["TIME"][0] + 0.5).astype(int)
    clean = he_is_nai(he["Pulse_Width"]) & (he["ACD"].sum(axis=1) == 0) & (he["Event_Type"] == 0)
    small = np.isin(he["Det_ID"], HE.groups["small"])
    blind = he["Det_ID"] == 16

    def net(mask_rows):
        sel = clean & mask_rows[rows]
        return ((sel & small).sum() / 15 - (sel & blind).sum()) / mask_rows.sum()

    assert net(visible) == pytest.approx(45.0, rel=0.25)
    assert abs(net(hidden)) < 6.0             # background only (+ the few CXB photons)


def test_crab_pulsation_is_in_the_events(crab, small_archive):  # noqa: F811
    record = truths(small_archive)[crab[0].exp_id]
    source = record["sources"][0]
    assert source["name"] == "Crab"
    he = crab[0].events("HE").read(["Time", "Det_ID", "Pulse_Width", "Event_Type"])
    keep = np.isin(he["Det_ID"], HE.groups["small"]) & he_is_nai(he["Pulse_Width"]) & (he["Event_Type"] == 0)
    times = he["Time"][keep]
    orbit = Orbit(*(record["orbit"][k] for k in ("altitude_km", "inclination_deg", "raan_deg", "arglat_deg", "epoch_met")))
    grid = np.arange(record["tstart"] - 1, record["tstop"] + 2)
    barycentric = np.interp(times, grid, barycentric_met(grid, orbit, source["ra"], source["dec"]))
    frequency = source["variability"]["frequency"]

    def z2(f):
        phase = 2 * np.pi * f * (barycentric - source["variability"]["epoch"])
        return 2.0 / times.size * (np.cos(phase).sum() ** 2 + np.sin(phase).sum() ** 2)

    assert z2(frequency) > 200 and z2(frequency + 0.1) < 40


def _tiny_document(seed):
    return {"seed": seed,
            "sources": [{"name": "Crab", "ra": 83.63308, "dec": 22.0145,
                         "spectrum": {"model": "powerlaw", "norm": 9.7, "index": 2.1}}],
            "proposals": [{"id": "P0101299", "type": "CAL", "observations": [{"target": "Crab", "exposures": [
                {"start": "2017-08-27T03:30:00", "duration": 40, "payloads": ["HE", "LE"]}]}]}]}


def test_simulation_is_deterministic_in_the_seed(tmp_path):
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        simulate_archive(build_spec(_tiny_document(seed)), tmp_path / name)
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.FITS"))
    assert files and all(filecmp.cmp(tmp_path / "a" / f, tmp_path / "b" / f, shallow=False) for f in files)
    evt = next(f for f in files if "HE-Evt" in f.name)
    assert not filecmp.cmp(tmp_path / "a" / evt, tmp_path / "c" / evt, shallow=False)


def test_highest_version_wins_and_obsid_level_fallback(tmp_path, small_archive):  # noqa: F811
    source = next(p for p in small_archive.glob("P0101315/P0101315001/*") if p.is_dir())
    obs_dir = tmp_path / "P0101315" / "P0101315001"
    shutil.copytree(source, obs_dir / source.name)
    exposure_dir = obs_dir / source.name
    exp_id = source.name.split("-")[0]
    before = Archive(tmp_path).exposures()[0]
    v1 = exposure_dir / "ME" / l1files.file_name(exp_id, "ME-Evt", 1)
    shutil.copy(v1, exposure_dir / "ME" / l1files.file_name(exp_id, "ME-Evt", 2))
    after = Archive(tmp_path).exposures()[0]
    assert after.files["ME-Evt"].version == 2 and after.fingerprint() != before.fingerprint()
    # Att and EHK at ObsID level, named after the ObsID (hxmtpy's fallback pattern).
    for kind, sub in (("Att", "ACS"), ("EHK", "AUX")):
        (obs_dir / sub).mkdir()
        (exposure_dir / sub / l1files.file_name(exp_id, kind)).rename(obs_dir / sub / l1files.file_name(exp_id[:11], kind))
    fallback = Archive(tmp_path).exposures()[0]
    assert fallback.files["EHK"].path.parent == obs_dir / "AUX" and fallback.files["Att"].path.parent == obs_dir / "ACS"
    with pytest.raises(ArchiveError, match="no HE-Evt file"):
        fallback.file("HE-Evt")
    # IHEP cluster layout: the same tree under 1L/A01/ is found too.
    ihep = tmp_path / "ihep" / "1L" / "A01"
    shutil.copytree(tmp_path / "P0101315", ihep / "P0101315")
    assert [e.exp_id for e in Archive(tmp_path / "ihep").exposures()] == [exp_id]
