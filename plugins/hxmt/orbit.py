"""HXMT orbit and attitude: what the EHK, Orbit and Att files hold, computed from a model.

Orbit: circular, 550 km, 43 deg inclination (reference §9), with the J2 regression of the node
and drift of the argument of latitude; Earth spherical (R = 6378.137 km); Earth-fixed frame
from the Greenwich mean sidereal time (IAU 1982, UT1 = UTC). Inertial axes are J2000.

Quantities (all per second, deg unless stated):
- ELV: elevation of the pointing above the Earth limb = angle(pointing, nadir) - Earth's
  angular radius; DYE_ELV / NTE_ELV: angle from the pointing to the nearest sunlit / dark
  point of the visible Earth (equal to ELV when the nearest limb point is sunlit / dark;
  the disk is sampled every 2 deg of azimuth on the limb and on five inner rings).
- SAA_FLAG: 1 inside `SAA_POLYGON` (geographic lon/lat at ~550 km, an approximation of the
  South Atlantic Anomaly's particle contour); T_SAA / TN_SAA: seconds since the last SAA exit
  / until the next SAA entry (0 inside), searched up to a day either side.
- COR: vertical geomagnetic cut-off rigidity (GV) of a centred dipole (Stoermer):
  COR = 14.9 / L^2 with McIlwain L = r / cos^2(lambda_m), r in Earth radii, lambda_m the
  geomagnetic latitude for the IGRF-13 (2020) dipole pole at 80.65 N, 72.68 W. COR2 uses the
  Smart & Shea (2005) effective form 15.062 / L^2 - 0.363.
- ANG_DIST: angle between the actual pointing (target + slew settling + jitter) and the
  target. SUN_ANG / MOON_ANG: angle from the pointing to the Sun / Moon (low-precision
  ephemerides of the Astronomical Almanac, ~0.01 deg / ~0.3 deg).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
from scipy.signal import lfilter

from .timeconv import met_to_time, to_met

EARTH_RADIUS_KM = 6378.137
GM_KM3_S2 = 398600.4418
J2 = 1.08262668e-3
EARTH_ROTATION = 7.2921150e-5          # rad/s
SPEED_OF_LIGHT_KM_S = 299792.458
AU_KM = 149597870.7
DIPOLE_POLE_DEG = (80.65, -72.68)      # geomagnetic north pole (lat, lon), IGRF-13 epoch 2020
TT_MINUS_UTC_AT_EPOCH = 66.184
# MET of the first second after each leap second inserted since the MET epoch.
LEAP_SECONDS_MET = (15724801.0, 110332802.0, 157852803.0)

# South Atlantic Anomaly contour (lon, lat in deg), counter-clockwise.
SAA_POLYGON = np.array([
    (-90.0, -30.0), (-85.0, -15.0), (-70.0, -5.0), (-50.0, 0.0), (-30.0, -2.0), (-10.0, -8.0),
    (10.0, -15.0), (25.0, -22.0), (35.0, -32.0), (30.0, -42.0), (15.0, -48.0), (-10.0, -50.0),
    (-40.0, -50.0), (-65.0, -45.0), (-85.0, -38.0)])

DEFAULT_ORBIT: Mapping[str, Any] = {"altitude_km": 550.0, "inclination_deg": 43.0, "raan_deg": 0.0,
                                    "arglat_deg": 0.0, "epoch": "2017-06-15T03:00:00"}


def unit_vector(ra_deg: np.ndarray | float, dec_deg: np.ndarray | float) -> np.ndarray:
    ra, dec = np.radians(ra_deg), np.radians(dec_deg)
    return np.stack(np.broadcast_arrays(np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)), axis=-1)


def radec_of(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    v = vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)
    return np.degrees(np.arctan2(v[..., 1], v[..., 0])) % 360.0, np.degrees(np.arcsin(np.clip(v[..., 2], -1, 1)))


def angle_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angle (deg) between unit vectors along the last axis (broadcasting), stable near 0."""
    cross = np.linalg.norm(np.cross(a, b), axis=-1)
    dot = np.sum(a * b, axis=-1)
    return np.degrees(np.arctan2(cross, dot))


def utc_julian_date(met: np.ndarray) -> np.ndarray:
    """UTC Julian date of MET seconds (leap seconds of `LEAP_SECONDS_MET` removed)."""
    met = np.asarray(met, dtype=float)
    leaps = np.searchsorted(np.asarray(LEAP_SECONDS_MET), met, side="right")
    return 2455927.5 + (met - leaps) / 86400.0


def gmst_rad(met: np.ndarray) -> np.ndarray:
    days = utc_julian_date(met) - 2451545.0
    return np.radians((280.46061837 + 360.98564736629 * days) % 360.0)


def _precession(centuries: np.ndarray) -> np.ndarray:
    """General precession in longitude since J2000 (rad): ecliptic of date -> J2000."""
    return np.radians(1.3969713 * centuries)


def sun_direction(met: np.ndarray) -> np.ndarray:
    """Unit vector from the Earth to the Sun (J2000 equatorial), Astronomical Almanac."""
    n = utc_julian_date(met) - 2451545.0
    mean_lon = np.radians(280.460 + 0.9856474 * n)
    anomaly = np.radians(357.528 + 0.9856003 * n)
    ecl_lon = (mean_lon + np.radians(1.915) * np.sin(anomaly) + np.radians(0.020) * np.sin(2 * anomaly)
               - _precession(n / 36525.0))
    obliquity = np.radians(23.439 - 4e-7 * n)
    return np.stack([np.cos(ecl_lon), np.cos(obliquity) * np.sin(ecl_lon),
                     np.sin(obliquity) * np.sin(ecl_lon)], axis=-1)


def moon_direction(met: np.ndarray) -> np.ndarray:
    """Unit vector from the Earth to the Moon (geocentric, low precision)."""
    t = (utc_julian_date(met) - 2451545.0) / 36525.0
    d = np.radians
    lon = d(218.32 + 481267.881 * t + 6.29 * np.sin(d(135.0 + 477198.87 * t))
            - 1.27 * np.sin(d(259.3 - 413335.36 * t)) + 0.66 * np.sin(d(235.7 + 890534.22 * t))
            + 0.21 * np.sin(d(269.9 + 954397.74 * t)) - 0.19 * np.sin(d(357.5 + 35999.05 * t))
            - 0.11 * np.sin(d(186.5 + 966404.03 * t)))
    lat = d(5.13 * np.sin(d(93.3 + 483202.02 * t)) + 0.28 * np.sin(d(228.2 + 960400.89 * t))
            - 0.28 * np.sin(d(318.3 + 6003.15 * t)) - 0.17 * np.sin(d(217.6 - 407332.21 * t)))
    lon = lon - _precession(t)
    eps = d(23.439)
    x, y, z = np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)
    return np.stack([x, np.cos(eps) * y - np.sin(eps) * z, np.sin(eps) * y + np.cos(eps) * z], axis=-1)


@dataclass(frozen=True)
class Orbit:
    """A circular orbit with J2 secular drifts."""

    altitude_km: float = 550.0
    inclination_deg: float = 43.0
    raan_deg: float = 0.0
    arglat_deg: float = 0.0
    epoch_met: float = 172119603.0            # 2017-06-15T03:00:00 UTC (launch)

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any] | None = None) -> "Orbit":
        merged = {**DEFAULT_ORBIT, **(spec or {})}
        return cls(float(merged["altitude_km"]), float(merged["inclination_deg"]), float(merged["raan_deg"]),
                   float(merged["arglat_deg"]), to_met(merged["epoch"]))

    def to_dict(self) -> dict[str, float]:
        return {"altitude_km": self.altitude_km, "inclination_deg": self.inclination_deg,
                "raan_deg": self.raan_deg, "arglat_deg": self.arglat_deg, "epoch_met": self.epoch_met,
                "period_s": self.period}

    @property
    def semi_major_axis(self) -> float:
        return EARTH_RADIUS_KM + self.altitude_km

    @property
    def mean_motion(self) -> float:
        return float(np.sqrt(GM_KM3_S2 / self.semi_major_axis ** 3))

    @property
    def _j2_factor(self) -> float:
        return 0.75 * J2 * (EARTH_RADIUS_KM / self.semi_major_axis) ** 2 * self.mean_motion

    @property
    def node_rate(self) -> float:
        """dRAAN/dt (rad/s): -1.5 n J2 (R/a)^2 cos i."""
        return -2.0 * self._j2_factor * np.cos(np.radians(self.inclination_deg))

    @property
    def arglat_rate(self) -> float:
        """d(argument of latitude)/dt (rad/s) including the J2 drifts of perigee and anomaly."""
        c2 = np.cos(np.radians(self.inclination_deg)) ** 2
        return self.mean_motion + self._j2_factor * ((5 * c2 - 1) + (3 * c2 - 1))

    @property
    def period(self) -> float:
        return float(2 * np.pi / self.arglat_rate)

    def eci(self, met: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Position (km) and velocity (km/s) in J2000 inertial axes, shape (n, 3)."""
        dt_ = np.asarray(met, dtype=float) - self.epoch_met
        u = np.radians(self.arglat_deg) + self.arglat_rate * dt_
        node = np.radians(self.raan_deg) + self.node_rate * dt_
        inc = np.radians(self.inclination_deg)
        a = self.semi_major_axis
        cu, su, cn, sn, ci, si = np.cos(u), np.sin(u), np.cos(node), np.sin(node), np.cos(inc), np.sin(inc)
        position = a * np.stack([cn * cu - sn * su * ci, sn * cu + cn * su * ci, su * si], axis=-1)
        speed = a * self.arglat_rate
        velocity = speed * np.stack([-cn * su - sn * cu * ci, -sn * su + cn * cu * ci, cu * si], axis=-1)
        return position, velocity


def eci_to_ecef(met: np.ndarray, position: np.ndarray, velocity: np.ndarray | None = None):
    theta = gmst_rad(met)
    c, s = np.cos(theta), np.sin(theta)
    x, y, z = position[..., 0], position[..., 1], position[..., 2]
    fixed = np.stack([c * x + s * y, -s * x + c * y, z], axis=-1)
    if velocity is None:
        return fixed
    vx, vy, vz = velocity[..., 0], velocity[..., 1], velocity[..., 2]
    v_rot = np.stack([c * vx + s * vy, -s * vx + c * vy, vz], axis=-1)
    # Earth-fixed velocity: rotated inertial velocity minus omega x r.
    v_fixed = v_rot - EARTH_ROTATION * np.stack([-fixed[..., 1], fixed[..., 0], np.zeros_like(z)], axis=-1)
    return fixed, v_fixed


def geodetic(fixed: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lon deg in [-180, 180), geocentric lat deg, altitude km) of Earth-fixed positions."""
    r = np.linalg.norm(fixed, axis=-1)
    lon = (np.degrees(np.arctan2(fixed[..., 1], fixed[..., 0])) + 180.0) % 360.0 - 180.0
    lat = np.degrees(np.arcsin(fixed[..., 2] / r))
    return lon, lat, r - EARTH_RADIUS_KM


def in_polygon(lon: np.ndarray, lat: np.ndarray, polygon: np.ndarray = SAA_POLYGON) -> np.ndarray:
    """Even-odd rule point-in-polygon test, vectorised over points."""
    lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    inside = np.zeros(lon.shape, dtype=bool)
    xs, ys = polygon[:, 0], polygon[:, 1]
    for i in range(len(polygon)):
        x1, y1, x2, y2 = xs[i - 1], ys[i - 1], xs[i], ys[i]
        crosses = (y1 > lat) != (y2 > lat)
        with np.errstate(divide="ignore", invalid="ignore"):
            x_at = x1 + (lat - y1) * (x2 - x1) / (y2 - y1)
        inside ^= crosses & (lon < x_at)
    return inside


def rigidity(fixed: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(COR, COR2 in GV, geomagnetic latitude deg) of Earth-fixed positions (km)."""
    lat0, lon0 = np.radians(DIPOLE_POLE_DEG)
    pole = np.array([np.cos(lat0) * np.cos(lon0), np.cos(lat0) * np.sin(lon0), np.sin(lat0)])
    r = np.linalg.norm(fixed, axis=-1)
    sin_mlat = np.clip(fixed @ pole / r, -1.0, 1.0)
    cos2 = 1.0 - sin_mlat ** 2
    l_shell = (r / EARTH_RADIUS_KM) / np.maximum(cos2, 1e-12)
    return 14.9 / l_shell ** 2, np.maximum(15.062 / l_shell ** 2 - 0.363, 0.0), np.degrees(np.arcsin(sin_mlat))


def saa_times(flag: np.ndarray, step: float, before: float) -> tuple[np.ndarray, np.ndarray]:
    """T_SAA, TN_SAA (s) from SAA flags on a regular grid; `before` caps missing passages."""
    n = flag.size
    index = np.arange(n, dtype=float)
    last_in = np.maximum.accumulate(np.where(flag, index, -np.inf))
    next_in = np.minimum.accumulate(np.where(flag, index, np.inf)[::-1])[::-1]
    t_saa = np.where(np.isfinite(last_in), (index - last_in) * step, (index + 1) * step + before)
    tn_saa = np.where(np.isfinite(next_in), (next_in - index) * step, (n - index) * step + before)
    return np.where(flag, 0.0, t_saa), np.where(flag, 0.0, tn_saa)


def _earth_samples(position: np.ndarray, n_azimuth: int = 180) -> tuple[np.ndarray, np.ndarray]:
    """Directions (n, m, 3) from the satellite to sample points of the visible Earth (limb
    first), and the Earth-surface unit normals at those points."""
    r = np.linalg.norm(position, axis=-1, keepdims=True)
    nadir = -position / r
    rho = np.arcsin(EARTH_RADIUS_KM / r[..., 0])
    helper = np.where(np.abs(nadir[..., 2:3]) < 0.9, np.array([0.0, 0.0, 1.0]), np.array([1.0, 0.0, 0.0]))
    e1 = np.cross(nadir, helper)
    e1 /= np.linalg.norm(e1, axis=-1, keepdims=True)
    e2 = np.cross(nadir, e1)
    rings = [(1.0, n_azimuth)] + [(f, n_azimuth // 2) for f in (0.999, 0.95, 0.8, 0.5, 0.2)]
    directions = []
    for fraction, count in rings:
        az = np.linspace(0.0, 2 * np.pi, count, endpoint=False)
        alpha = (rho * fraction)[:, None]
        d = (np.cos(alpha)[..., None] * nadir[:, None, :]
             + np.sin(alpha)[..., None] * (np.cos(az)[None, :, None] * e1[:, None, :]
                                           + np.sin(az)[None, :, None] * e2[:, None, :]))
        directions.append(d)
    directions = np.concatenate(directions, axis=1)
    # Intersection with the sphere (nearer root); at the limb the discriminant is ~0.
    b = np.sum(directions * position[:, None, :], axis=-1)
    c = np.sum(position ** 2, axis=-1)[:, None] - EARTH_RADIUS_KM ** 2
    t = -b - np.sqrt(np.maximum(b ** 2 - c, 0.0))
    surface = position[:, None, :] + t[..., None] * directions
    normals = surface / np.linalg.norm(surface, axis=-1, keepdims=True)
    return directions, normals


def earth_elevations(position: np.ndarray, pointing: np.ndarray, sun: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ELV, DYE_ELV, NTE_ELV) in deg for satellite positions (n, 3) and unit pointings (n, 3)."""
    r = np.linalg.norm(position, axis=-1)
    nadir = -position / r[:, None]
    elv = angle_between(pointing, nadir) - np.degrees(np.arcsin(EARTH_RADIUS_KM / r))
    bright = np.empty_like(elv)
    dark = np.empty_like(elv)
    for start in range(0, len(elv), 256):     # ~630 samples per row: bounded memory
        part = slice(start, start + 256)
        directions, normals = _earth_samples(position[part])
        sunlit = np.sum(normals * sun[part, None, :], axis=-1) > 0.0
        angles = angle_between(pointing[part, None, :], directions)
        bright[part] = np.where(sunlit, angles, np.inf).min(axis=1)
        dark[part] = np.where(~sunlit, angles, np.inf).min(axis=1)
    # The nearest sampled Earth point decides: if it is sunlit, the bright-Earth elevation is
    # ELV itself (also when ELV < 0, pointing at the sunlit Earth); otherwise it is the angle
    # to the nearest sunlit point (180 when the visible Earth is all dark). Same for the night.
    dye = np.where(bright <= dark, elv, np.where(np.isfinite(bright), bright, 180.0))
    nte = np.where(dark < bright, elv, np.where(np.isfinite(dark), dark, 180.0))
    return elv, dye, nte


def in_sunlight(position: np.ndarray, sun: np.ndarray) -> np.ndarray:
    """Cylindrical Earth-shadow model."""
    along = np.sum(position * sun, axis=-1)
    perpendicular = np.linalg.norm(position - along[:, None] * sun, axis=-1)
    return (along > 0) | (perpendicular > EARTH_RADIUS_KM)


@dataclass(frozen=True)
class Attitude:
    """Pointing of the satellite: target, roll, slew settling and jitter (model).

    Each exposure starts right after a slew: the residual offset `settle_offset_deg` decays
    with a 30 s time constant; on top, an Ornstein-Uhlenbeck jitter of `jitter_deg` (per
    axis, 100 s correlation time)."""

    ra: float
    dec: float
    roll: float = 0.0
    jitter_deg: float = 0.006
    settle_offset_deg: float = 0.3
    settle_time: float = 30.0
    jitter_time: float = 100.0

    def offsets(self, met: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(east, north) offsets of the pointing from the target (deg) on a regular grid."""
        met = np.asarray(met, dtype=float)
        n = met.size
        step = float(met[1] - met[0]) if n > 1 else 1.0
        decay = np.exp(-step / self.jitter_time)
        noise = rng.standard_normal((n, 2)) * self.jitter_deg * np.sqrt(1 - decay ** 2)
        noise[0] /= np.sqrt(1 - decay ** 2)           # the first row: the stationary spread
        # AR(1) recursion jitter[i] = decay * jitter[i-1] + noise[i], as a linear filter.
        jitter = lfilter([1.0], [1.0, -decay], noise, axis=0)
        angle = rng.uniform(0, 2 * np.pi)
        settle = self.settle_offset_deg * np.exp(-(met - met[0]) / self.settle_time)
        return (jitter[:, 0] + settle * np.cos(angle), jitter[:, 1] + settle * np.sin(angle))

    def pointing(self, met: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(ra, dec) of the actual pointing per grid time (inverse gnomonic projection)."""
        east, north = self.offsets(met, rng)
        return from_tangent_plane(self.ra, self.dec, east, north)


def from_tangent_plane(ra0: float, dec0: float, east_deg: np.ndarray, north_deg: np.ndarray):
    xi, eta = np.tan(np.radians(east_deg)), np.tan(np.radians(north_deg))
    ra0r, dec0r = np.radians(ra0), np.radians(dec0)
    denom = np.cos(dec0r) - eta * np.sin(dec0r)
    ra = ra0r + np.arctan2(xi, denom)
    dec = np.arctan2(np.sin(dec0r) + eta * np.cos(dec0r), np.hypot(xi, denom))
    return np.degrees(ra) % 360.0, np.degrees(dec)


def ehk_columns(met: np.ndarray, orbit: Orbit, attitude: Attitude, pointing_ra: np.ndarray,
                pointing_dec: np.ndarray, saa_window: float = 86400.0) -> dict[str, np.ndarray]:
    """All EHK columns (one row per element of `met`, a 1-s grid) in file order."""
    met = np.asarray(met, dtype=float)
    position, velocity = orbit.eci(met)
    fixed = eci_to_ecef(met, position)
    lon, lat, alt = geodetic(fixed)
    pointing = unit_vector(pointing_ra, pointing_dec)
    target = unit_vector(attitude.ra, attitude.dec)
    sun = sun_direction(met)
    moon = moon_direction(met)
    elv, dye, nte = earth_elevations(position, pointing, sun)
    cor, cor2, mlat = rigidity(fixed)
    l_shell = (np.linalg.norm(fixed, axis=-1) / EARTH_RADIUS_KM) / np.cos(np.radians(mlat)) ** 2
    flag, t_saa, tn_saa = saa_flags(met, orbit, saa_window)
    return {
        "TIME": met,
        "SAT_X": position[:, 0], "SAT_Y": position[:, 1], "SAT_Z": position[:, 2],
        "SAT_VX": velocity[:, 0], "SAT_VY": velocity[:, 1], "SAT_VZ": velocity[:, 2],
        "SAT_ALT": alt, "SAT_LON": lon, "SAT_LAT": lat,
        "ELV": elv, "DYE_ELV": dye, "NTE_ELV": nte,
        "FOC_RA": np.asarray(pointing_ra, dtype=float), "FOC_DEC": np.asarray(pointing_dec, dtype=float),
        "FOC_ROLL": np.full(met.size, attitude.roll), "SUNSHINE": in_sunlight(position, sun).astype(np.int16),
        "MAG_LAT": mlat, "L_SHELL": l_shell,
        "ANG_DIST": angle_between(pointing, target[None, :]),
        "COR": cor, "COR2": cor2, "SAA_FLAG": flag.astype(np.int16), "T_SAA": t_saa, "TN_SAA": tn_saa,
        "SUN_ANG": angle_between(pointing, sun), "MOON_ANG": angle_between(pointing, moon),
    }


def saa_flags(met: np.ndarray, orbit: Orbit, window: float = 86400.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """SAA_FLAG, T_SAA, TN_SAA on a 1-s grid `met`, looking `window` s before and after."""
    met = np.asarray(met, dtype=float)
    before = np.arange(met[0] - window, met[0], 1.0)
    after = np.arange(met[-1] + 1.0, met[-1] + 1.0 + window, 1.0)
    grid = np.concatenate([before, met, after])
    lon, lat, _ = geodetic(eci_to_ecef(grid, orbit.eci(grid)[0]))
    flag = in_polygon(lon, lat)
    t_saa, tn_saa = saa_times(flag, 1.0, 0.0)
    part = slice(before.size, before.size + met.size)
    return flag[part], t_saa[part], tn_saa[part]


def source_elevation(met: np.ndarray, orbit: Orbit, ra: float, dec: float,
                     position: np.ndarray | None = None) -> np.ndarray:
    """Elevation (deg) of a sky position above the Earth limb seen from the satellite."""
    if position is None:
        position = orbit.eci(met)[0]
    r = np.linalg.norm(position, axis=-1)
    return (angle_between(unit_vector(ra, dec)[None, :], -position / r[:, None])
            - np.degrees(np.arcsin(EARTH_RADIUS_KM / r)))


def barycentric_met(met: np.ndarray, orbit: Orbit, ra: float, dec: float) -> np.ndarray:
    """Arrival time at the Solar System barycentre of photons from (ra, dec) detected at MET
    `met`: TDB seconds since MJDREF (TDB), = t_TDB + (r_SSB->satellite . n) / c.
    Uses astropy's built-in ephemeris (no download)."""
    from astropy.coordinates import get_body_barycentric

    met = np.asarray(met, dtype=float)
    time = met_to_time(met)
    earth = get_body_barycentric("earth", time).xyz.to_value("km").T
    position = earth + orbit.eci(met)[0]
    delay = position @ unit_vector(ra, dec) / SPEED_OF_LIGHT_KM_S
    return (time.tdb - reference_tdb()).to_value("s") + delay


def reference_tdb():
    """MJDREF read in the TDB scale: the zero of barycentric MET."""
    from astropy.time import Time

    from .timeconv import MJDREFF, MJDREFI
    return Time(MJDREFI, MJDREFF, format="mjd", scale="tdb")


_COMPARISON = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=|==|!=|<|>)\s*(-?[0-9.]+(?:[eE][-+]?\d+)?)\s*$")


def conjunction_mask(columns: Mapping[str, np.ndarray], expression: str) -> np.ndarray:
    """Rows passing an expression of `&&`-joined comparisons (the form of the default HXMTDAS
    screening expressions, reference §5.4). The pipelines' full grammar lives with them; this
    one exists so the simulator can report the good time it produced."""
    mask = None
    for term in expression.split("&&"):
        match = _COMPARISON.match(term)
        if not match:
            raise ValueError(f"unsupported term {term!r} (expected COLUMN<op>NUMBER joined by &&)")
        name, op, value = match.group(1), match.group(2), float(match.group(3))
        if name not in columns:
            raise ValueError(f"unknown column {name!r}")
        column = np.asarray(columns[name], dtype=float)
        result = {"<": column < value, ">": column > value, "<=": column <= value,
                  ">=": column >= value, "==": column == value, "!=": column != value}[op]
        mask = result if mask is None else mask & result
    return mask if mask is not None else np.ones(len(next(iter(columns.values()))), dtype=bool)


def criteria_masks(columns: Mapping[str, np.ndarray], expression: str) -> dict[str, np.ndarray]:
    """Each `&&` term of `expression` -> its own pass mask (for 'time removed by criterion')."""
    return {term.strip(): conjunction_mask(columns, term) for term in expression.split("&&")}


def intervals_of(mask: np.ndarray, times: np.ndarray, half_width: float = 0.5,
                 clip: tuple[float, float] | None = None) -> list[list[float]]:
    """Merge rows where `mask` holds into [start, stop] intervals; each row covers
    [time - half_width, time + half_width], optionally clipped to `clip`."""
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return []
    padded = np.concatenate([[False], mask, [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    out = []
    for first, last in zip(edges[0::2], edges[1::2] - 1):
        start, stop = times[first] - half_width, times[last] + half_width
        if clip is not None:
            start, stop = max(start, clip[0]), min(stop, clip[1])
        if stop > start:
            out.append([float(start), float(stop)])
    return out
