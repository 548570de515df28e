"""Daily bars from Alpaca Market Data v2 or Polygon aggregates, through their own SDKs.

Both SDKs build the requests, authenticate, follow the pages (`next_page_token`,
`next_url`) and parse the answers. Their own retries are turned off: a rate limit or a
server error comes back here as a `ProviderError` with the status and, where the SDK
exposes the answer's headers (alpaca-py does, polygon-api-client does not), the wait the
provider asked for, so the sync waits as told, counts the wait, and never hammers.

Bars are asked for as traded, and split-adjusted beside them (`adjusted=True`): the two
together tell where a split took effect (`intelligence.prices.split_ratios`).
"""

from __future__ import annotations

import json
import time
from datetime import date, datetime
from datetime import time as clock
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from amc_learning.intelligence.prices import RawBar
from amc_learning.settings import Settings

NEW_YORK = ZoneInfo("America/New_York")
#: Yahoo-style index symbols as Polygon names them (indices need a Polygon plan with them).
POLYGON_INDICES = {"^IXIC": "I:COMP", "^GSPC": "I:SPX", "^NDX": "I:NDX", "^DJI": "I:DJI",
                   "^VIX": "I:VIX", "^RUT": "I:RUT"}


class ProviderError(Exception):
    """A request the provider did not answer with bars: its HTTP status (None: no answer)
    and the seconds it asked us to wait, when it said."""

    def __init__(self, status: int | None, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.status, self.retry_after = status, retry_after

    @property
    def transient(self) -> bool:
        """Worth asking again: no answer, a timeout, a rate limit or a server error."""
        return self.status is None or self.status in (408, 429) or self.status >= 500


class Provider(Protocol):
    name: str

    def serves(self, symbol: str) -> str | None:
        """None when this provider has bars for `symbol`, else why not."""

    def bars(self, symbol: str, start: date, end: date, adjusted: bool) -> list[RawBar]:
        """The daily bars of `symbol` from `start` to `end` (raises ProviderError)."""


def _session(moment: datetime) -> date:
    return moment.astimezone(NEW_YORK).date()


class Alpaca:
    """Alpaca Market Data v2 (`alpaca-py`'s StockHistoricalDataClient, raw answers)."""

    name = "alpaca"

    def __init__(self, key_id: str, secret_key: str, base_url: str, feed: str) -> None:
        from alpaca.data.historical import StockHistoricalDataClient

        self._client = StockHistoricalDataClient(key_id, secret_key, raw_data=True,
                                                 url_override=base_url)
        # The SDK retries a 429 itself, 3 times 3 s apart whatever the answer asks, and
        # this client takes no setting for it: its retry count is set to none here, so
        # the sync honours Retry-After and counts the wait (tests/unit/test_market.py
        # fails if an SDK release renames it)
        self._client._retry = 0
        self._feed = feed

    def serves(self, symbol: str) -> str | None:
        if symbol.startswith("^"):
            return "Alpaca has no index data: set LEARNING_INDEX_SYMBOL to an ETF (SPY, QQQ)"
        return None

    def bars(self, symbol: str, start: date, end: date, adjusted: bool) -> list[RawBar]:
        from alpaca.common.exceptions import APIError
        from alpaca.data.enums import Adjustment, DataFeed
        from alpaca.data.requests import StockBarsRequest
        from alpaca.data.timeframe import TimeFrame
        from requests import RequestException

        request = StockBarsRequest(
            symbol_or_symbols=symbol, timeframe=TimeFrame.Day,
            start=datetime.combine(start, clock(0), NEW_YORK),
            end=datetime.combine(end, clock(23, 59), NEW_YORK),
            adjustment=Adjustment.SPLIT if adjusted else Adjustment.RAW,
            feed=DataFeed(self._feed))
        try:
            answer: Any = self._client.get_stock_bars(request)
        except APIError as exc:
            headers = exc.response.headers if exc.response is not None else {}
            raise ProviderError(exc.status_code, _text(str(exc)), wait_asked(headers)) \
                from None
        except RequestException as exc:
            raise ProviderError(None, f"no answer: {type(exc).__name__}") from None
        return [RawBar(_session(datetime.fromisoformat(b["t"].replace("Z", "+00:00"))),
                       float(b["o"]), float(b["h"]), float(b["l"]), float(b["c"]),
                       float(b["v"]))
                for b in answer.get(symbol, [])]


class Polygon:
    """Polygon aggregates (`polygon-api-client`'s RESTClient.list_aggs)."""

    name = "polygon"

    def __init__(self, api_key: str, base_url: str) -> None:
        from polygon import RESTClient

        self._client = RESTClient(api_key, base=base_url.rstrip("/"), retries=0)

    def serves(self, symbol: str) -> str | None:
        return None  # indices too, on a plan that has them (else a 403, reported)

    def bars(self, symbol: str, start: date, end: date, adjusted: bool) -> list[RawBar]:
        from polygon.exceptions import BadResponse
        from urllib3.exceptions import HTTPError, MaxRetryError

        ticker = POLYGON_INDICES.get(symbol, symbol.removeprefix("^"))
        try:
            aggs = list(self._client.list_aggs(ticker, 1, "day", start.isoformat(),
                                               end.isoformat(), adjusted=adjusted,
                                               limit=50_000))
        except MaxRetryError as exc:  # the SDK's retries are off: a 429 or 5xx lands here
            status = next((int(w) for w in str(exc.reason).split() if w.isdigit()), None)
            raise ProviderError(status, f"HTTP {status or 'no answer'}") from None
        except BadResponse as exc:  # any other non-200: final for this symbol
            raise ProviderError(400, _text(str(exc))) from None
        except HTTPError as exc:
            raise ProviderError(None, f"no answer: {type(exc).__name__}") from None
        return [RawBar(_session(datetime.fromtimestamp(a.timestamp / 1000, NEW_YORK)),
                       float(a.open), float(a.high), float(a.low), float(a.close),
                       float(a.volume or 0.0))
                for a in aggs if a.timestamp is not None and a.close is not None]


def wait_asked(headers: Any) -> float | None:
    """Seconds from `Retry-After`, else Alpaca's `X-RateLimit-Reset` (epoch seconds)."""
    after = headers.get("Retry-After")
    if after is not None:
        try:
            return max(0.0, float(after))
        except ValueError:
            return None
    reset = headers.get("X-RateLimit-Reset")
    if reset is not None:
        try:
            return max(0.0, float(reset) - time.time())
        except ValueError:
            return None
    return None


def _text(body: str) -> str:
    """The provider's message from an error body (JSON or not), short."""
    try:
        parsed = json.loads(body)
        if isinstance(parsed, dict):
            body = str(parsed.get("message") or parsed.get("error") or parsed)
    except ValueError:
        pass
    return body.strip()[:300]


def provider_of(settings: Settings, name: str | None = None) -> Provider:
    """The provider named (default LEARNING_PRICES_PROVIDER) with its keys, or ValueError
    saying which setting is missing."""
    name = name or settings.prices_provider
    if name == "alpaca":
        if settings.alpaca_key_id is None or settings.alpaca_secret_key is None:
            raise ValueError("no LEARNING_ALPACA_KEY_ID and LEARNING_ALPACA_SECRET_KEY")
        return Alpaca(settings.alpaca_key_id.get_secret_value(),
                      settings.alpaca_secret_key.get_secret_value(),
                      settings.alpaca_data_url, settings.alpaca_feed)
    if name == "polygon":
        if settings.polygon_api_key is None:
            raise ValueError("no LEARNING_POLYGON_API_KEY")
        return Polygon(settings.polygon_api_key.get_secret_value(), settings.polygon_url)
    raise ValueError(f"no provider {name!r}: alpaca or polygon")
