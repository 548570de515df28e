"""The paced run's learner: a learning cycle between two sessions of the simulated market,
once the consumers have stored and tracked everything up to the first of them
(`entrypoints.run` explains the pacing)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from datetime import date

from amc_learning.entrypoints.supervise import Say, wait_until_settled
from amc_learning.intelligence.rollout import RolloutPolicy
from amc_learning.service.cycle import AnyGuardrails, run_cycle
from amc_learning.service.deps import Deps
from amc_learning.streams.offsets import Partition
from amc_learning.streams.params import ParamsReader


@dataclass(frozen=True)
class Pacing:
    """Learning between sessions (see `entrypoints.run`)."""

    consumers: list[subprocess.Popen[bytes]]
    every: int = 5
    policy: RolloutPolicy | None = None
    guardrails: AnyGuardrails | tuple[AnyGuardrails, ...] | None = None


@dataclass(frozen=True)
class Learner:
    """The paced run's learning cycles."""

    deps: Deps
    pacing: Pacing
    reader: ParamsReader
    say: Say

    def cycle(self, as_of: date, targets: dict[Partition, int]) -> None:
        """The daily cycle as of `as_of`, once everything up to `targets` is stored and
        tracked; then wait until the simulated trading engine's reader holds what it
        published, so the next session trades on it, as it would live."""
        try:
            wait_until_settled(self.deps.settings, targets, self.pacing.consumers,
                               say=lambda _: None)
            summary = run_cycle(self.deps, "daily", as_of, self.pacing.policy,
                                guardrails=self.pacing.guardrails, report=False)
        except Exception as exc:  # learning never stops the trading: it goes on as it is
            self.say(f"  learner as of {as_of}: the cycle failed ({type(exc).__name__}: "
                     f"{exc}); trading goes on with the params it holds")
            return
        sets = summary.get("models", [summary])
        for part in sets:
            for change in part.get("changes", []):
                self.say(f"  learner as of {as_of}: {part['name']} version "
                         f"{change['version']} -> {change['mode']}")
        published = [(part["name"], c["version"], c["mode"]) for part in sets
                     for c in part.get("changes", []) if c["publish"]]

        def holds(r: ParamsReader) -> bool:
            held = r.status()["held"]
            return all(held.get(name, {}).get(mode) == version
                       for name, version, mode in published)

        if published and not self.reader.wait_for(holds, timeout=60.0):
            self.say(f"  the simulated trading engine's reader did not show {published} "
                     f"within 60 s: it trades on what it holds ({self.reader.status()['held']})")
