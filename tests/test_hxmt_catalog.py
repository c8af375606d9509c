"""The observation index: every search criterion, combinations, paging, data rights, rescans
and bad files."""
import datetime as dt
import shutil

import pytest

from dataserver.plugin import Identity, QueryError
from plugins.hxmt import l1files
from plugins.hxmt.catalog import DEFAULT_GRANT_ROLES, ObservationIndex, SEARCH_PARAMETERS
from plugins.hxmt.simulate import simulate_archive
from plugins.hxmt.skymodel import build_spec
from tests.hxmt_support import small_archive  # noqa: F401  (fixture)

NOW = dt.datetime.now(dt.timezone.utc)
ANONYMOUS = Identity()
ADMIN = Identity("ops", frozenset({"admin"}))
CHEN = Identity("chen.li")
WANG = Identity("wang.fang")
CRAB, CYG, BLANK, AQL, CEN = "P0101299001", "P0101315001", "P0101331001", "P0201012001", "P0301040001"


@pytest.fixture(scope="module")
def index(small_archive, tmp_path_factory):  # noqa: F811
    built = ObservationIndex(tmp_path_factory.mktemp("index") / "hxmt.sqlite")
    report = built.rescan(small_archive)
    assert (len(report.added), report.errors, report.observations) == (6, [], 5)
    return built


def ids(index, criteria=None, identity=ANONYMOUS):
    return [row["obs_id"] for row in index.search(criteria or {}, identity, NOW)["rows"]]


def test_data_rights_are_applied_inside_the_query(index):
    assert ids(index) == [CRAB, CYG, BLANK]                       # public only, by start time
    assert ids(index, {}, ADMIN) == [CRAB, CYG, BLANK, CEN, AQL]
    assert ids(index, {}, CHEN) == [CRAB, CYG, BLANK, CEN]
    assert ids(index, {}, WANG) == [CRAB, CYG, BLANK, AQL]
    assert ids(index, {"name": "Cen X-3"}) == [] and ids(index, {"name": "Cen X-3"}, CHEN) == [CEN]
    # The same decisions as Identity.may_access, row by row.
    everything = index.search({}, ADMIN, NOW)["rows"]
    for identity in (ANONYMOUS, ADMIN, CHEN, WANG, Identity("someone", frozenset({"hxmt_team"}))):
        allowed = [r["obs_id"] for r in everything
                   if identity.may_access(r["pi"], r["public_date"], DEFAULT_GRANT_ROLES, NOW)]
        assert ids(index, {}, identity) == allowed


def test_rows_describe_the_observation(index):
    result = index.search({"obs_id": AQL}, WANG, NOW)
    assert result["total"] == 1 and [c["name"] for c in result["columns"]][:3] == ["obs_id", "proposal", "proposal_type"]
    row = result["rows"][0]
    assert (row["proposal"], row["proposal_type"], row["pi"], row["pi_name"], row["target"]) == \
        ("P0201012", "ToO", "wang.fang", "Fang Wang", "Aql X-1")
    assert row["exp_ids"] == ["P020101200101"] and row["payloads"] == ["LE"] and row["n_exposures"] == 1
    assert row["proprietary"] and row["public_date"] > NOW.isoformat() and row["exposure"] == pytest.approx(200.0)
    assert (row["ra"], row["dec"]) == pytest.approx((287.81687, 0.58497))
    assert row["start"].startswith("2026-11-01")
    crab = index.search({"obs_id": CRAB}, ANONYMOUS, NOW)["rows"][0]
    assert crab["public_date"] is None and not crab["proprietary"] and crab["n_exposures"] == 2
    cyg = index.search({"obs_id": CYG}, ANONYMOUS, NOW)["rows"][0]
    assert cyg["public_date"].startswith("2018-10-31") and not cyg["proprietary"]


@pytest.mark.parametrize("name", ["Crab", "crab", "CRAB NEBULA", "crab_nebula", "Tau X-1", "  crab  ", "M1"])
def test_search_by_name_is_case_and_space_insensitive_with_aliases(index, name):
    assert ids(index, {"name": name}) == [CRAB]


def test_search_by_name_resolves_positions_and_archive_target_names(index):
    assert ids(index, {"name": "4U 1956+35"}) == [CYG]            # an alias of Cyg X-1
    assert ids(index, {"name": "blank field 1"}) == [BLANK]       # known to the archive only
    # A source within name_radius of a pointing matches under another target name:
    # 1A 1118-615 is 1.29 deg from the Cen X-3 pointing.
    assert ids(index, {"name": "1A 1118-615", "name_radius": 1.5}, CHEN) == [CEN]
    assert ids(index, {"name": "1A 1118-615", "name_radius": 1.0}, CHEN) == []
    with pytest.raises(QueryError) as info:
        index.search({"name": "Crabb"}, ANONYMOUS, NOW)
    assert info.value.parameter == "name" and "not found" in info.value.reason and "Crab" in info.value.reason


def test_search_by_date_range(index):
    assert ids(index, {"start": "2017-01-01", "end": "2017-12-31"}) == [CRAB, CYG]
    assert ids(index, {"start": "2019-01-01"}) == [BLANK]
    assert ids(index, {"end": "2017-09-01"}) == [CRAB]
    assert ids(index, {"start": "2026-10-01"}, ADMIN) == [CEN, AQL]
    crab = index.search({"obs_id": CRAB}, ANONYMOUS, NOW)["rows"][0]
    assert ids(index, {"start": crab["tstop"], "end": crab["tstop"] + 1e6}) == [CRAB]      # MET numbers, inclusive
    assert ids(index, {"start": crab["tstop"] + 1, "end": crab["tstop"] + 1e6}) == []
    with pytest.raises(QueryError, match="end: the end of the date range is before its start"):
        index.search({"start": "2018-01-01", "end": "2017-01-01"}, ANONYMOUS, NOW)
    with pytest.raises(QueryError, match="start: not an ISO-8601"):
        index.search({"start": "sometime"}, ANONYMOUS, NOW)


def test_search_by_cone(index):
    assert ids(index, {"ra": 83.6, "dec": 22.0, "radius": 0.5}) == [CRAB]
    assert ids(index, {"ra": 85.0, "dec": 22.0, "radius": 0.5}) == []
    result = index.search({"ra": 150.0, "dec": 50.0, "radius": 60.0, "sort": "distance"}, ADMIN, NOW)
    distances = [r["distance"] for r in result["rows"]]
    assert result["rows"][0]["obs_id"] == BLANK and distances == sorted(distances)
    assert distances[0] == pytest.approx(5.0, abs=1e-6) and all(d <= 60.0 for d in distances)
    with pytest.raises(QueryError, match="dec: a cone needs both ra and dec"):
        index.search({"ra": 10.0}, ANONYMOUS, NOW)
    with pytest.raises(QueryError, match="radius"):
        index.search({"ra": 10.0, "dec": 0.0, "radius": -1}, ANONYMOUS, NOW)


def test_search_by_proposal_type_and_number(index):
    assert ids(index, {"proposal_type": "CAL"}) == [CRAB, BLANK]
    assert ids(index, {"proposal_type": "ToO"}) == [] and ids(index, {"proposal_type": "ToO"}, ADMIN) == [AQL]
    assert ids(index, {"proposal": "P0101315"}) == [CYG] and ids(index, {"proposal": "p0101315"}) == [CYG]
    with pytest.raises(QueryError, match="proposal_type"):
        index.search({"proposal_type": "Secret"}, ANONYMOUS, NOW)
    with pytest.raises(QueryError, match="proposal"):
        index.search({"proposal": "12345"}, ANONYMOUS, NOW)


def test_combined_criteria(index):
    assert ids(index, {"proposal_type": "CAL", "start": "2019-01-01"}) == [BLANK]
    assert ids(index, {"name": "Crab", "proposal_type": "GO"}) == []
    assert ids(index, {"name": "Crab", "start": "2017-08-01", "end": "2017-08-31", "proposal": "P0101299"}) == [CRAB]
    assert ids(index, {"ra": 287.8, "dec": 0.6, "radius": 1.0, "proposal_type": "ToO", "pi": "wang.fang"}, WANG) == [AQL]
    assert ids(index, {"ra": 287.8, "dec": 0.6, "radius": 1.0}, CHEN) == []


def test_sorting_and_paging_count_after_rights(index):
    everything = ids(index, {"sort": "start", "order": "desc"}, ADMIN)
    assert everything == [AQL, CEN, BLANK, CYG, CRAB]
    page = index.search({"sort": "start", "order": "desc", "limit": 2, "offset": 1}, ADMIN, NOW)
    assert page["total"] == 5 and [r["obs_id"] for r in page["rows"]] == everything[1:3]
    public = index.search({"limit": 1, "offset": 2}, ANONYMOUS, NOW)
    assert public["total"] == 3 and [r["obs_id"] for r in public["rows"]] == [BLANK]
    assert ids(index, {"sort": "target"}) == [BLANK, CRAB, CYG]
    with pytest.raises(QueryError, match="sort: sorting by distance needs"):
        index.search({"sort": "distance"}, ANONYMOUS, NOW)
    with pytest.raises(QueryError, match="limit"):
        index.search({"limit": 0}, ANONYMOUS, NOW)


def test_unknown_criteria_are_refused_by_name(index):
    with pytest.raises(QueryError) as info:
        index.search({"colour": "red"}, ANONYMOUS, NOW)
    assert info.value.parameter == "colour" and "unknown search parameter" in info.value.reason
    assert set(SEARCH_PARAMETERS) >= {"name", "start", "end", "ra", "dec", "radius", "proposal_type", "proposal"}


def test_exposure_access_for_data_units(index):
    access = index.exposure_access("P030104000101")
    assert access["owner"] == "chen.li" and access["public_date"] > NOW.isoformat()
    assert access["path"].endswith(access["path"].split("/")[-1]) and access["obs_id"] == CEN
    with pytest.raises(KeyError, match="no exposure P099999999901"):
        index.exposure_access("P099999999901")


@pytest.fixture
def archive_copy(small_archive, tmp_path):  # noqa: F811
    """The four single-payload proposals of the small archive (cheap to copy and to damage)."""
    root = tmp_path / "archive"
    for proposal in ("P0101315", "P0101331", "P0201012", "P0301040"):
        shutil.copytree(small_archive / proposal, root / proposal)
    return root


def test_rescan_picks_up_additions_and_removals(archive_copy, tmp_path):
    index = ObservationIndex(tmp_path / "index.sqlite")
    first = index.rescan(archive_copy)
    assert (len(first.added), first.observations) == (4, 4)
    again = index.rescan(archive_copy)
    assert (again.added, again.updated, again.removed, again.unchanged) == ([], [], [], 4)
    shutil.rmtree(archive_copy / "P0101331")
    document = {"sources": [], "proposals": [{"id": "P0101400", "type": "GO", "pi": "new.pi", "observations": [
        {"target": "Vela X-1", "ra": 135.52859, "dec": -40.55469,
         "exposures": [{"start": "2020-02-02T02:00:00", "duration": 30, "payloads": ["ME"]}]}]}]}
    simulate_archive(build_spec(document), archive_copy)
    third = index.rescan(archive_copy)
    assert third.removed == ["P010133100101"] and third.added == ["P010140000101"] and third.unchanged == 3
    assert ids(index, {}, ADMIN) == [CYG, "P0101400001", CEN, AQL]
    assert ids(index, {"name": "vela x-1"}) == ["P0101400001"]
    # A new file version changes the fingerprint: the exposure is re-read.
    me_dir = next((archive_copy / "P0101400").rglob("ME"))
    v1 = next(me_dir.glob("*ME-Evt*V1*"))
    shutil.copy(v1, me_dir / v1.name.replace("_V1_", "_V2_"))
    assert index.rescan(archive_copy).updated == ["P010140000101"]


def test_bad_files_are_reported_not_fatal(archive_copy, tmp_path):
    garbage = next((archive_copy / "P0101315").rglob("*ME-Evt*.FITS"))
    garbage.write_bytes(b"this is not a FITS file" * 100)
    truncated = next((archive_copy / "P0301040").rglob("*HE-Evt*.FITS"))
    with open(truncated, "r+b") as handle:
        handle.truncate(truncated.stat().st_size // 2)
    (archive_copy / "P0201012" / l1files.PROPOSAL_FILE).write_text("{not json")
    index = ObservationIndex(tmp_path / "index.sqlite")
    report = index.rescan(archive_copy)
    reasons = dict(report.errors)
    assert "not a readable FITS file" in reasons[str(garbage)]
    assert "truncated" in reasons[str(truncated)]
    assert "unreadable proposal metadata" in reasons[str(archive_copy / "P0201012" / l1files.PROPOSAL_FILE)]
    assert sorted(index.errors()) == sorted(report.errors)
    # The healthy exposures are indexed; the one with bad metadata falls back to public, no type.
    rows = {r["obs_id"]: r for r in index.search({}, ADMIN, NOW)["rows"]}
    assert set(rows) == {BLANK, AQL}
    assert rows[AQL]["proposal_type"] is None and rows[AQL]["public_date"] is None
