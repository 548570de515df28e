"""How long a full learning pass takes on 1 million decisions with outcomes.

    make bench-analysis            # or: .venv/bin/python -m bench.analysis --sessions 5000

Builds a planted research world (sessions x symbols decisions), then times each analyzer
of `intelligence.analysis.analyze` and the whole pass, as of the last session. Prints a
table and a JSON line. The target (issue 4): under 60 s on one of these machines.
"""

from __future__ import annotations

import argparse
import json
import time

from intelligence.analysis import AnalysisConfig, analyze
from simulator.research import ResearchConfig, simulate_research


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=5000)
    parser.add_argument("--symbols", type=int, default=200)
    args = parser.parse_args()
    started = time.perf_counter()
    world = simulate_research(
        ResearchConfig(seed=0, sessions=args.sessions, symbols=args.symbols)
    )
    built = time.perf_counter() - started
    cfg = AnalysisConfig(
        features=world.truth.features, signature_features=("crowding", "momentum")
    )
    as_of = world.decisions["session"].max()
    started = time.perf_counter()
    result = analyze(world.decisions, world.index, as_of, cfg)  # type: ignore[arg-type]
    elapsed = time.perf_counter() - started
    decisions = len(world.decisions)
    print(f"decisions: {decisions:,} ({args.sessions} sessions x {args.symbols} symbols)")
    print(f"world built in {built:.1f} s")
    print(f"full analysis pass: {elapsed:.1f} s ({decisions / elapsed:,.0f} decisions/s)")
    print(f"patterns {len(result.patterns)}, failure modes {len(result.failure_modes)}, "
          f"calibration maps {len(result.calibration)}")
    print(json.dumps({"decisions": decisions, "analysis_seconds": round(elapsed, 2),
                      "target_seconds": 60}))


if __name__ == "__main__":
    main()
