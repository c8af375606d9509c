"""Insight-HXMT code shared by the payload plugins `hxmt_he`, `hxmt_me` and `hxmt_le`.

Modules (each usable on its own):

- `instrument`: payload facts - detectors, FOV groups, boxes, PI <-> energy, raw-channel gains,
  dead time, time resolution, default screening expressions, detector-list parsing.
- `timeconv`: HXMT mission elapsed time (TT seconds since 2012-01-01T00:00:00 UTC) <-> astropy.
- `materials`: X-ray attenuation of the detector materials and interstellar absorption.
- `response`: the one instrument-response model (effective area, collimators, redistribution,
  expected counts, cosmic X-ray background) used by the simulator and by the response generator.
- `skymodel`: sources, spectra, variability and the observation plan of a simulation, with a
  JSON Schema (`data/skymodel.schema.json`).
- `orbit`: orbit, attitude, Earth occultation, SAA, cut-off rigidity: the EHK/Orbit/Att content.
- `fitsio`: chunked, memory-bounded FITS table writing and memory-mapped chunked reading.
- `l1files`: Level-1 file names, headers and layouts (events, housekeeping, Att, Orbit, EHK,
  and GTI files in the HXMTDAS layout).
- `events`: event generation per payload (sources, CXB, particle background, calibration
  sources, dead time, digitisation) in time slices.
- `simulate`: writes Level-1 exposures and their truth from a sky model.
- `archive`: reads a Level-1 archive tree (real or simulated).
- `catalog`: the SQLite observation index and its search.
- `demo`: the specification of the embedded demo archive.
- `bench_support`: single-payload exposures of chosen size for benchmarks.

Source-name resolution, shared by all instruments, is `dataserver.names`.
"""
