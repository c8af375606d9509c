"""Orbit, occultation, SAA, cut-off rigidity and ephemerides of the EHK model."""
import numpy as np
import pytest
from astropy.coordinates import get_sun

from plugins.hxmt import orbit as orb
from plugins.hxmt.timeconv import iso_to_met, met_to_time

T0 = iso_to_met("2017-08-27T00:00:00")


def test_circular_orbit_of_the_reference():
    model = orb.Orbit.from_spec({})
    assert model.period / 60 == pytest.approx(95.5, abs=0.3)                      # reference §9
    met = np.arange(T0, T0 + 86400.0, 10.0)
    position, velocity = model.eci(met)
    lon, lat, alt = orb.geodetic(orb.eci_to_ecef(met, position))
    assert np.allclose(alt, 550.0) and lat.max() == pytest.approx(43.0, abs=0.05)
    assert np.allclose(np.sum(position * velocity, axis=1), 0.0, atol=1e-6)
    # Node regression of a 43 deg, 550 km orbit: about -5.5 deg/day.
    assert np.degrees(model.node_rate) * 86400 == pytest.approx(-5.46, abs=0.1)


def test_saa_flag_and_times_follow_the_polygon():
    model = orb.Orbit.from_spec({})
    met = np.arange(T0, T0 + 20000.0, 1.0)
    flag, t_saa, tn_saa = orb.saa_flags(met, model)
    lon, lat, _ = orb.geodetic(orb.eci_to_ecef(met, model.eci(met)[0]))
    assert np.array_equal(flag, orb.in_polygon(lon, lat)) and flag.any() and not flag.all()
    assert np.all(t_saa[flag] == 0) and np.all(tn_saa[flag] == 0)
    exits = np.flatnonzero(flag[:-1] & ~flag[1:]) + 1
    assert np.all(t_saa[exits] == 1.0) and np.all(t_saa[exits + 100] == 101.0)
    entries = np.flatnonzero(~flag[:-1] & flag[1:])
    assert np.all(tn_saa[entries] == 1.0)
    # Passages last minutes, not hours.
    assert 5 * 60 < (flag.sum() / max(len(exits), 1)) < 30 * 60


def test_point_in_polygon():
    square = np.array([(0.0, 0.0), (10.0, 0.0), (10.0, 10.0), (0.0, 10.0)])
    assert list(orb.in_polygon(np.array([5.0, 15.0, -1.0]), np.array([5.0, 5.0, 5.0]), square)) == [True, False, False]
    assert orb.in_polygon(np.array([-45.0]), np.array([-25.0]))[0]          # the SAA's heart


def test_elevations_from_geometry():
    position = np.array([[orb.EARTH_RADIUS_KM + 550.0, 0.0, 0.0]] * 3)
    pointing = np.array([[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    sun = np.array([[1.0, 0.0, 0.0]] * 3)                  # the satellite is above the day side
    elv, dye, nte = orb.earth_elevations(position, pointing, sun)
    rho = np.degrees(np.arcsin(orb.EARTH_RADIUS_KM / (orb.EARTH_RADIUS_KM + 550.0)))
    assert elv == pytest.approx([180 - rho, -rho, 90 - rho])
    assert dye[2] == pytest.approx(elv[2])                  # the nearest limb point is sunlit
    assert nte[2] > elv[2] + 1                              # the night side is beyond the terminator
    elevation = orb.source_elevation(np.array([T0]), orb.Orbit.from_spec({}), 83.63, 22.01)
    assert -90 < elevation[0] < 180


def test_cut_off_rigidity_of_a_dipole():
    r = orb.EARTH_RADIUS_KM + 550.0
    lat0, lon0 = np.radians(orb.DIPOLE_POLE_DEG)
    pole = np.array([np.cos(lat0) * np.cos(lon0), np.cos(lat0) * np.sin(lon0), np.sin(lat0)])
    equator = np.cross(pole, [0.0, 0.0, 1.0])
    equator /= np.linalg.norm(equator)
    cor, cor2, mlat = orb.rigidity(np.array([equator * r, pole * r]))
    assert cor[0] == pytest.approx(14.9 / (r / orb.EARTH_RADIUS_KM) ** 2) and mlat[0] == pytest.approx(0.0, abs=1e-9)
    assert cor[1] == pytest.approx(0.0, abs=1e-9) and mlat[1] == pytest.approx(90.0)
    assert cor2[0] == pytest.approx(15.062 / (r / orb.EARTH_RADIUS_KM) ** 2 - 0.363)


def test_sun_and_moon_agree_with_astropy():
    met = np.array([T0, iso_to_met("2026-03-01T12:00:00")])
    sun = get_sun(met_to_time(met))
    ours = orb.sun_direction(met)
    theirs = orb.unit_vector(sun.ra.deg, sun.dec.deg)
    assert np.all(orb.angle_between(ours, theirs) < 0.05)


def test_attitude_settles_then_jitters():
    attitude = orb.Attitude(83.63, 22.01, 30.0, jitter_deg=0.006, settle_offset_deg=0.3)
    met = np.arange(T0, T0 + 2000.0)
    ra, dec = attitude.pointing(met, np.random.default_rng(5))
    offset = orb.angle_between(orb.unit_vector(ra, dec), orb.unit_vector(83.63, 22.01)[None, :])
    assert offset[0] > 0.2 and np.all(offset[300:] < 0.04)
    assert 0.003 < np.median(offset[300:]) < 0.02


def test_intervals_and_screening_terms():
    times = np.arange(100.0, 110.0)
    mask = np.array([0, 1, 1, 0, 0, 1, 1, 1, 0, 1], dtype=bool)
    assert orb.intervals_of(mask, times, clip=(99.5, 109.0)) == [[100.5, 102.5], [104.5, 107.5], [108.5, 109.0]]
    columns = {"ELV": np.array([5.0, 20.0]), "COR": np.array([9.0, 9.0])}
    assert list(orb.conjunction_mask(columns, "ELV>10&&COR>8")) == [False, True]
    assert set(orb.criteria_masks(columns, "ELV>10&&COR>8")) == {"ELV>10", "COR>8"}
    with pytest.raises(ValueError, match="unknown column 'SUN'"):
        orb.conjunction_mask(columns, "SUN>3")
    with pytest.raises(ValueError, match="unsupported term"):
        orb.conjunction_mask(columns, "ELV>10||COR>8")
