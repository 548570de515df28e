"""The paced run's learner: one learning cycle at a time beside the simulated market,
each once the consumers have stored and tracked everything up to its session
(`entrypoints.run` explains the pacing)."""

from __future__ import annotations

import subprocess
import threading
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


class Learner:
    """The paced run's learning cycles, one at a time, beside the simulation."""

    def __init__(self, deps: Deps, pacing: Pacing, reader: ParamsReader, say: Say) -> None:
        self.deps, self.pacing, self.reader, self.say = deps, pacing, reader, say
        self._thread: threading.Thread | None = None
        self._published: list[tuple[str, int, str]] = []  # set, version, mode

    def start(self, as_of: date, targets: dict[Partition, int]) -> None:
        """The cycle as of `as_of`, once everything up to `targets` is stored and tracked."""
        self._thread = threading.Thread(target=self._cycle, args=(as_of, dict(targets)),
                                        name=f"learner-{as_of}", daemon=True)
        self._thread.start()

    def join(self) -> None:
        """Wait for the running cycle, then until the reader holds what it published."""
        if self._thread is None:
            return
        self._thread.join()
        self._thread = None
        published, self._published = self._published, []

        def holds(r: ParamsReader) -> bool:
            held = r.status()["held"]
            return all(held.get(name, {}).get(mode) == version
                       for name, version, mode in published)

        if published and not self.reader.wait_for(holds, timeout=60.0):
            self.say(f"  the simulated trading engine's reader did not show {published} "
                     f"within 60 s: it trades on what it holds ({self.reader.status()['held']})")

    def _cycle(self, as_of: date, targets: dict[Partition, int]) -> None:
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
        self._published = [(part["name"], c["version"], c["mode"]) for part in sets
                           for c in part.get("changes", []) if c["publish"]]
