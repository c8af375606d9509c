"""Offline name resolution with the shipped catalogue; Sesame only when asked (never here)."""
import pytest

from dataserver import names
from dataserver.names import NameNotFound, NameResolver, load_catalogue
from dataserver.settings import Settings


@pytest.fixture(scope="module")
def resolver():
    return NameResolver()


def test_the_catalogue_is_large_consistent_and_plausible():
    entries = load_catalogue()
    assert len(entries) >= 200
    assert len({e.name.lower() for e in entries}) == len(entries)
    assert all(0 <= e.ra < 360 and -90 <= e.dec <= 90 for e in entries)
    NameResolver(entries)            # no alias belongs to two sources


@pytest.mark.parametrize("query, name, ra, dec", [
    ("Crab", "Crab", 83.63308, 22.01450),
    ("Cyg X-1", "Cyg X-1", 299.59032, 35.20161),
    ("Sco X-1", "Sco X-1", 244.97958, -15.64022),
    ("Her X-1", "Her X-1", 254.45755, 35.34236),
    ("Vela X-1", "Vela X-1", 135.52859, -40.55469),
    ("GX 339-4", "GX 339-4", 255.70575, -48.78978),
    ("4U 1630-47", "4U 1630-47", 248.50671, -47.39300),
    ("Cen X-3", "Cen X-3", 170.31288, -60.62379),
    ("SS 433", "SS 433", 287.95650, 4.98272),
    ("Mrk 421", "Mrk 421", 166.11381, 38.20883),
    ("3C 273", "3C 273", 187.27792, 2.05239),
])
def test_well_known_sources_resolve_to_their_j2000_positions(resolver, query, name, ra, dec):
    found = resolver.resolve(query)
    assert (found.name, found.origin) == (name, "catalogue")
    assert (found.ra, found.dec) == pytest.approx((ra, dec), abs=2e-4)


@pytest.mark.parametrize("query", ["cyg x-1", "CYG X-1", "Cyg_X-1", "CygX-1", " cyg  x-1 ", "Cyg X1",
                                   "cyg x\u22121", "4U 1956+35", "HDE 226868"])
def test_matching_ignores_case_spaces_underscores_and_takes_aliases(resolver, query):
    assert resolver.resolve(query).name == "Cyg X-1"


def test_signs_of_declination_are_not_ignored(resolver):
    assert resolver.lookup("4U 1630+47") is None
    assert names.loose("4U 1630-47") != names.loose("4U 1630+47")


def test_unknown_names_get_close_matches(resolver):
    with pytest.raises(NameNotFound) as info:
        resolver.resolve("Crabb")
    assert "'Crabb' not found" in str(info.value) and info.value.suggestions[0] == "Crab"
    with pytest.raises(NameNotFound) as info:
        resolver.resolve("Cyg X-9")
    assert {"Cyg X-1", "Cyg X-2", "Cyg X-3"} <= set(info.value.suggestions)
    with pytest.raises(NameNotFound) as info:
        resolver.resolve("zzzqqq")
    assert info.value.suggestions == [] and "close matches" not in str(info.value)
    assert isinstance(info.value, LookupError)


def test_sesame_is_only_asked_when_enabled(monkeypatch):
    from astropy.coordinates import SkyCoord

    calls = []

    def fake_from_name(name, *args, **kwargs):
        calls.append(name)
        return SkyCoord(10.0, 20.0, unit="deg")

    monkeypatch.setattr(SkyCoord, "from_name", staticmethod(fake_from_name))
    with pytest.raises(NameNotFound):
        NameResolver().resolve("NGC 9999")
    assert calls == []                                   # off by default: no network attempt
    online = NameResolver.from_settings(Settings.from_env({"XODA_NAME_RESOLVER_ONLINE": "yes"}))
    found = online.resolve("NGC 9999")
    assert (found.origin, found.ra, found.dec) == ("sesame", 10.0, 20.0) and calls == ["NGC 9999"]
    assert online.resolve("Crab").origin == "catalogue" and calls == ["NGC 9999"]

    def failing(name, *args, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr(SkyCoord, "from_name", staticmethod(failing))
    with pytest.raises(NameNotFound, match="nor by CDS Sesame"):
        online.resolve("NGC 9998")
