"""The simulated trading side speaking a real producer's shapes (`run --producer`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from amc_learning.adapters.amc_trader import Version
from amc_learning.adapters.mapped import Mapped
from amc_learning.schemas.common import Event, ScoringModel
from amc_learning.schemas.discovery import SCORE_COMPONENTS
from amc_learning.schemas.trades import TradeFilled
from amc_learning.service.imports import records
from amc_learning.simulator import amc_shapes

#: The simulated AMC-Trader scanner, as the adapters read it.
AMC_SCANNER = Version(None, ScoringModel(name="amc-scanner", version=amc_shapes.SCANNER),
                      amc_shapes.SCALE, {c: amc_shapes.MOST for c in SCORE_COMPONENTS},
                      tuple(amc_shapes.FEATURES.values()))


@dataclass
class AmcTraderFeed:
    """Each day's events written as AMC-Trader writes them (`simulator.amc_shapes`), read
    back by the adapters as its real files are; bars and news pass as they are. Counts
    the records and the rejections; knows the symbols held, from the fills it wrote (a
    BUY on one is AMC-Trader's BUY_MORE, a SELL its TRIM_50)."""

    account: Mapped = field(default_factory=Mapped)
    held: set[str] = field(default_factory=set)

    def __call__(self, events: list[Event]) -> list[Event]:
        native = []
        for event in events:  # in the day's order: decisions before today's fills
            native.append((event, amc_shapes.render(event, held=event.key in self.held)))
            if isinstance(event, TradeFilled):
                (self.held.add if event.fill_type == "ENTRY" else self.held.discard)(
                    event.symbol)
        mapped, _ = records([r for _, r in native if r is not None], tz=amc_shapes.TZ,
                            written_at=events[0].occurred_at if events else datetime.now(UTC),
                            weights={}, versions=[AMC_SCANNER], scanned={})
        self.account.read += mapped.read
        self.account.rejected.extend(mapped.rejected)
        self.account.inferred.update(mapped.inferred)
        return [e for e, r in native if r is None] + mapped.events
