"""Insight-HXMT code shared by the payload plugins `hxmt_he`, `hxmt_me` and `hxmt_le`.

Modules (each usable on its own):

- `instrument`: payload facts - detectors, FOV groups, boxes, PI <-> energy, raw-channel gains,
  dead time, time resolution, default screening expressions, detector-list parsing.
- `timeconv`: HXMT mission elapsed time (TT seconds since 2012-01-01T00:00:00 UTC) <-> astropy.
- `materials`: X-ray attenuation of the detector materials, and the cosmic X-ray background.
- `response`: the one instrument-response model (effective area, collimators, redistribution,
  expected counts, cosmic X-ray background) used by the simulator and by the response generator.
- `skymodel`: sources, spectra, variability and the observation plan of a simulation, with a
  JSON Schema (`data/skymodel.schema.json`); the spectra are `dataserver.spectral_models`'.
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

The pipelines of the payload plugins (issue 4):

- `gtiexpr`: the screening-expression grammar (parsed, never evaluated as Python).
- `gti`: interval arithmetic, screening of housekeeping rows, GTI files and their report.
- `calib`: pical (and LE recon): the calibrated columns (PI, DET_ID, FLAG) of each event.
- `livetime`: dead time and live exposure (HE-DTime, ME rebuilt from events, LE none).
- `selection`: screened-event selections (row ranges) and the binning that applies them.
- `rsp`: RMF and ARF from the response model; `background`: the bkgmap models.
- `tasks_gti`, `tasks_products`: the tasks of the chains; `payload_steps`: the steps every
  payload chain has, made per payload; `common_steps`: steps shared by the payloads (user
  intervals, combination over exposures, net light curves).
- `pipeline`: how a payload's steps connect (`Chain`); `parameters`: query parameters;
  `products`: planning (`Planner`); `plugin`: the payload plugins' base class.

Source-name resolution, shared by all instruments, is `dataserver.names`.
"""
