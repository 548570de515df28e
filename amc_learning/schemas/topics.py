"""Topic names of the contract and which event types each topic may carry."""

from __future__ import annotations

DISCOVERY = "learning.discovery.v1"
THESIS = "learning.thesis.v1"
TRADES = "learning.trades.v1"
PRICES = "learning.prices.v1"
CATALYSTS = "learning.catalysts.v1"
OUTCOMES = "learning.outcomes.v1"
PARAMS = "learning.params.v1"
INSIGHTS = "learning.insights.v1"
DLQ = "learning.dlq.v1"

#: The event types each input topic may carry; anything else is dead-lettered.
EVENT_TYPES_BY_TOPIC: dict[str, frozenset[str]] = {
    DISCOVERY: frozenset({"candidate_scored"}),
    THESIS: frozenset({"thesis_decided"}),
    TRADES: frozenset({"trade_filled"}),
    PRICES: frozenset({"price_bar_closed"}),
    CATALYSTS: frozenset({"catalyst_observed"}),
    OUTCOMES: frozenset({"outcome_updated"}),
}
