"""A single-payload HE exposure of chosen length, for `python -m bench hxmt_sim` (and the
issue-4 pipeline benchmark, which needs exposures of 10^6 and 10^7 events to reduce)."""
from __future__ import annotations

from pathlib import Path

from .simulate import simulate_exposure, options_with_defaults
from .orbit import Orbit
from .skymodel import ExposurePlan, ObservationPlan, ProposalPlan, build_spec

BENCH_DOCUMENT = {
    "seed": 4242,
    "sources": [{"name": "Bench source", "ra": 83.63308, "dec": 22.0145,
                 "spectrum": {"model": "powerlaw", "norm": 38.8, "index": 2.1, "nh": 0.36}}],
    "proposals": [{"id": "P0999999", "type": "CAL", "observations": [
        {"target": "Bench source", "exposures": [{"start": "2018-01-10T00:00:00", "duration": 100}]}]}],
}


def simulate_he(directory: str | Path, duration: float, start: str = "2018-01-10T00:00:00") -> int:
    """Simulate one HE-only exposure of `duration` s of a 4-Crab source; return events written."""
    spec = build_spec({**BENCH_DOCUMENT, "proposals": [{**BENCH_DOCUMENT["proposals"][0], "observations": [
        {"target": "Bench source", "exposures": [{"start": start, "duration": duration, "payloads": ["HE"]}]}]}]})
    proposal: ProposalPlan = spec.proposals[0]
    observation: ObservationPlan = proposal.observations[0]
    exposure: ExposurePlan = observation.exposures[0]
    truth = simulate_exposure(Path(directory), proposal, observation, exposure, spec.sources,
                              Orbit.from_spec(spec.orbit), options_with_defaults(spec.options), spec.seed)
    return int(truth["events"]["HE"]["written"])
