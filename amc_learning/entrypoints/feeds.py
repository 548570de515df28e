"""The simulated trading side speaking a real producer's shapes (`run --producer`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from amc_learning.adapters.amc_trader import Version
from amc_learning.adapters.mapped import Mapped
from amc_learning.schemas.common import Event, ScoringModel
from amc_learning.schemas.trades import TradeFilled
from amc_learning.service.imports import records
from amc_learning.simulator import amc_shapes
from amc_learning.simulator.tiered import model

SCANNER = model()

#: The simulated AMC-Trader scanner (3.3.1, the tiered world's), as the adapters read it:
#: each factor read as its tier, and as a component on [0, its most points].
AMC_SCANNER = Version(
    None, ScoringModel(name=SCANNER.name, version=SCANNER.version),
    (SCANNER.scale.low, SCANNER.scale.high),
    {f.name: float(max(max(t.points for t in f.tiers), 1)) for f in SCANNER.factors},
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
