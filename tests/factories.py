"""Valid events with overridable fields, for tests."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

from pydantic import SecretStr

from amc_learning.schemas.catalysts import CatalystObserved
from amc_learning.schemas.discovery import CandidateScored
from amc_learning.schemas.prices import PriceBarClosed
from amc_learning.schemas.signing import Signer, new_private_key
from amc_learning.schemas.thesis import ThesisDecided
from amc_learning.schemas.trades import TradeFilled

AT = datetime(2024, 3, 1, 14, 35, tzinfo=UTC)
#: The learner's params key in tests, and a key that is not ours (both made per run).
SIGNING_KEY, OTHER_KEY = new_private_key(), new_private_key()


def keyed(settings: Any, key: str = SIGNING_KEY) -> Any:
    """Settings that sign params with `key` (and so also accept its public half)."""
    return settings.with_overrides(params_signing_key=SecretStr(key))


def reading(settings: Any, key: str = SIGNING_KEY) -> Any:
    """Settings of a reader: the public half of `key`, nothing that can sign."""
    return settings.with_overrides(params_signing_key=None,
                                   params_public_keys=Signer(key).public_key)
SCORES = {"volume_momentum": 0.9, "squeeze": 0.4, "catalyst": 0.8, "options": 0.5,
          "technical": 0.6, "sentiment": 0.3}


def _envelope(producer: str) -> dict[str, Any]:
    return {"event_id": uuid.uuid4(), "occurred_at": AT, "producer": producer}


def thesis(**overrides: Any) -> ThesisDecided:
    fields: dict[str, Any] = {
        **_envelope("thesis-svc"), "decision_id": f"dec-{uuid.uuid4().hex[:8]}", "symbol": "AMC",
        "decision_type": "BUY", "decision_source": "thesis", "confidence_score": 0.72,
        "entry_price": 5.25, "position_size_pct": 2.5, "discovery_run_id": "run-1",
        "discovery_timestamp": datetime(2024, 3, 1, 13, 30, tzinfo=UTC),
        "discovery_scores": SCORES, "discovery_features": {"rsi_14": 61.5, "relative_volume": 3.2},
        "thesis": {"expected_direction": "UP", "horizon_days": 7, "target_price": 5.8,
                   "stop_price": 4.9, "expected_catalyst": "earnings", "catalyst_window_days": 5,
                   "expected_volume_ratio": 2.0, "rationale": "volume + catalyst"},
        "market_conditions": {"vix": 14.2, "sector": "consumer", "regime": "bull_low_vol"},
        "reasoning": "strong setup",
    }
    return ThesisDecided.model_validate({**fields, **overrides})


def candidate(**overrides: Any) -> CandidateScored:
    fields: dict[str, Any] = {
        **_envelope("discovery-svc"), "run_id": "run-1", "symbol": "AMC", "rank": 1,
        "composite_score": 0.71, "threshold": 0.66, "passed": True, "scores": SCORES,
        "features": {"rsi_14": 61.5, "relative_volume": 3.2}, "price": 5.1,
    }
    return CandidateScored.model_validate({**fields, **overrides})


def fill(**overrides: Any) -> TradeFilled:
    fields: dict[str, Any] = {
        **_envelope("trading-svc"), "fill_id": f"fill-{uuid.uuid4().hex[:8]}", "trade_id": "trd-1",
        "decision_id": "dec-1", "symbol": "AMC", "fill_type": "ENTRY", "side": "BUY",
        "quantity": 100.0, "price": 5.26, "position_size_pct": 2.5,
    }
    return TradeFilled.model_validate({**fields, **overrides})


def bar(**overrides: Any) -> PriceBarClosed:
    fields: dict[str, Any] = {
        **_envelope("market-data"), "symbol": "AMC", "session": date(2024, 3, 1), "open": 5.2,
        "high": 5.6, "low": 5.0, "close": 5.4, "volume": 1_250_000.0,
    }
    return PriceBarClosed.model_validate({**fields, **overrides})


def catalyst(**overrides: Any) -> CatalystObserved:
    fields: dict[str, Any] = {
        **_envelope("news-feed"), "symbol": "AMC", "session": date(2024, 3, 1),
        "kind": "earnings", "headline": "AMC beats", "magnitude": 0.6,
    }
    return CatalystObserved.model_validate({**fields, **overrides})
