"""What the simulated trading earned under each params arm, beside what the fallback would
have earned on the same sessions.

Every BUY or SELL the simulated thesis service decides is an entry of the arm its
`ParamsReader` handed it ("fallback", "v3 live", "v4 canary"); beside it, for the same
sessions, the world computes what the fallback params would have decided on their own
discovery run (`World` records those as the "fallback (counterfactual)" arm). Both are
marked to market the same way: side × position size × (close `horizon` sessions later ÷
entry − 1), in percent of the portfolio, so the comparison is paired — same sessions,
same prices, same horizon. An entry whose horizon runs past the last simulated session
is still open and is not counted.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np

COUNTERFACTUAL = "fallback (counterfactual)"


@dataclass(frozen=True)
class Entry:
    t: int  # the world's session index
    session: date
    arm: str
    symbol: int
    side: float  # +1 BUY, -1 SELL
    size_pct: float
    entry: float  # entry price (the session's open)


@dataclass
class Ledger:
    horizon: int = 7
    entries: list[Entry] = field(default_factory=list)
    closes: dict[int, np.ndarray] = field(default_factory=dict)
    #: per session index: the arm the live view was in (a canary arm may run beside it)
    live: dict[int, str] = field(default_factory=dict)
    #: per session index: decisions made under another arm than the live one (a canary's
    #: share), traded or not
    other_arms: Counter[int] = field(default_factory=Counter)

    def add(self, entry: Entry) -> None:
        self.entries.append(entry)

    def close(self, t: int, closes: np.ndarray) -> None:
        self.closes[t] = closes

    def return_of(self, e: Entry) -> float | None:
        """The entry's side × return at its horizon (unsized); None while open."""
        later = self.closes.get(e.t + self.horizon - 1)
        if later is None:
            return None
        return e.side * (float(later[e.symbol]) / e.entry - 1.0)

    def pnl_pct(self, e: Entry) -> float | None:
        """The entry's P&L in percent of the portfolio at its horizon; None while open."""
        ret = self.return_of(e)
        return None if ret is None else e.size_pct * ret

    def summary(self) -> dict[str, Any]:
        """Per arm: sessions, trades, trades marked, P&L (percent of the portfolio) and
        mean per trade; for each real arm, the counterfactual fallback on its sessions."""
        by_arm: dict[str, list[tuple[Entry, float | None]]] = defaultdict(list)
        for e in self.entries:
            by_arm[e.arm].append((e, self.pnl_pct(e)))
        fallback_by_session: dict[date, list[float]] = defaultdict(list)
        for e, pnl in by_arm.get(COUNTERFACTUAL, []):
            if pnl is not None:
                fallback_by_session[e.session].append(pnl)
        arms = {}
        for arm, rows in sorted(by_arm.items()):
            marked = [pnl for _, pnl in rows if pnl is not None]
            sessions = sorted({e.session for e, pnl in rows if pnl is not None})
            figures: dict[str, Any] = {
                "sessions": len(sessions), "trades": len(rows), "marked": len(marked),
                "pnl_pct": round(sum(marked), 4),
                "per_trade_bp": round(float(np.mean(marked)) * 100, 2) if marked else None,
            }
            if arm != COUNTERFACTUAL:
                same = [p for s in sessions for p in fallback_by_session.get(s, [])]
                figures["fallback_same_sessions"] = {
                    "trades": len(same), "pnl_pct": round(sum(same), 4),
                    "per_trade_bp": round(float(np.mean(same)) * 100, 2) if same else None}
            arms[arm] = figures
        return {"horizon_sessions": self.horizon, "arms": arms, "learned": self._learned(),
                "book": self.book()}

    def book(self) -> dict[str, dict[str, Any]]:
        """Per marked session (ISO date) of the trading side (not the counterfactual): the
        arm live that session, its trades, how many decisions another arm made (a canary's
        share, traded or not) and the session's P&L as one book, in percent of equity."""
        rows: dict[int, list[tuple[Entry, float]]] = defaultdict(list)
        for e in self.entries:
            if e.arm != COUNTERFACTUAL and (ret := self.return_of(e)) is not None:
                rows[e.t].append((e, ret))
        out = {}
        for t, marked in sorted(rows.items()):
            live = self.live.get(t, "fallback")
            out[marked[0][0].session.isoformat()] = {
                "arm": live, "trades": len(marked),
                "other_arms": self.other_arms[t],
                "pct": round(float(np.mean([ret for _, ret in marked])) / self.horizon * 100,
                             8)}
        return out

    def _learned(self) -> dict[str, Any]:
        """The sessions a learned version was live in (and marked): what the trading made
        in them, all arms together, against the counterfactual fallback on them."""
        sessions = {t for t, arm in self.live.items()
                    if arm != "fallback" and t + self.horizon - 1 in self.closes}
        made = [p for e in self.entries if e.t in sessions and e.arm != COUNTERFACTUAL
                and (p := self.pnl_pct(e)) is not None]
        fallback = [p for e in self.entries if e.t in sessions and e.arm == COUNTERFACTUAL
                    and (p := self.pnl_pct(e)) is not None]
        gap = dict.fromkeys(sorted(sessions), 0.0)  # per session: learned - fallback
        for e in self.entries:
            if e.t in gap and (p := self.pnl_pct(e)) is not None:
                gap[e.t] += -p if e.arm == COUNTERFACTUAL else p
        return {"sessions": len(sessions), "trades": len(made),
                "pnl_pct": round(sum(made), 4), "fallback_trades": len(fallback),
                "fallback_pnl_pct": round(sum(fallback), 4),
                "per_session": [round(d, 6) for d in gap.values()]}
