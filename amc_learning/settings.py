"""The one settings object: every LEARNING_* environment variable, frozen, documented."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Configuration of every process. Unset Kafka/PostgreSQL means: use the embedded ones."""

    model_config = SettingsConfigDict(env_prefix="LEARNING_", frozen=True, extra="ignore")

    kafka_bootstrap: str | None = Field(
        None, description="Kafka bootstrap servers host:port[,host:port]; unset = embedded Tansu"
    )
    database_url: str | None = Field(
        None, description="PostgreSQL URL (postgresql://...); unset = embedded PostgreSQL"
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="Kafka security protocol"
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        None, description="SASL mechanism when the protocol is SASL_*"
    )
    kafka_sasl_username: str | None = Field(None, description="SASL user name")
    kafka_sasl_password: SecretStr | None = Field(None, description="SASL password")
    kafka_ssl_cafile: Path | None = Field(None, description="CA bundle for TLS to Kafka")
    kafka_ssl_certfile: Path | None = Field(None, description="client certificate for mutual TLS")
    kafka_ssl_keyfile: Path | None = Field(None, description="client key for mutual TLS")
    kafka_enable_idempotence: bool = Field(
        False, description="idempotent producer (real Kafka only; Tansu rejects InitProducerId)"
    )
    topic_prefix: str = Field("", description="prefix for every topic name (tenancy, tests)")
    topic_partitions: int = Field(6, ge=1, description="partitions of the keyed input topics")
    topic_replication: int = Field(1, ge=1, description="replication factor of created topics")
    persist_group: str = Field("learning-persist", description="consumer group of persist")
    outcomes_group: str = Field(
        "learning-outcomes", description="Faust app id (consumer group) of the outcomes worker"
    )
    outcome_horizons: str = Field(
        "1,7,30", pattern=r"^\d+,\d+,\d+$",
        description="sessions behind return_1d, return_7d, return_30d (three increasing "
        "numbers); the learning judges by the middle one",
    )
    outcomes_stall_s: float = Field(
        30.0, gt=0, description="outcomes worker: restart itself when nothing moved for this "
        "long while input records wait (a safety net against faust-streaming stalls)")
    outcomes_producer_batch_bytes: int = Field(
        1, ge=1, description="outcomes worker produce batch size; 1 = one record per batch, "
        "which Faust changelog recovery needs on Tansu (raise it on real Kafka)",
    )
    stop_grace_s: float = Field(
        10.0, gt=0, description="after SIGTERM: how long a worker waits, in all, for Kafka to "
        "take its last batch's commit and its leaving the group before it exits anyway (what "
        "was not committed is read again by the next worker and stored idempotently)",
    )
    batch_max_records: int = Field(5000, ge=1, description="records per stored batch, at most")
    batch_max_wait_ms: int = Field(200, ge=1, description="wait for a batch to fill, at most")
    max_event_bytes: int = Field(
        262_144, ge=1024, description="larger records are dead-lettered without decoding"
    )
    publisher_queue_size: int = Field(
        100_000, ge=1, description="events the publisher buffers before dropping the oldest"
    )
    breaker_failure_threshold: int = Field(
        5, ge=1, description="consecutive send failures that open the publisher's breaker"
    )
    breaker_cooldown_s: float = Field(
        5.0, gt=0, description="seconds an open breaker waits before a half-open trial"
    )
    params_signing_key: SecretStr | None = Field(
        None, description="the learner's Ed25519 private key that signs params (base64; "
        "`amc-learning params-keys new`). Only the learner holds it")
    params_public_keys: str = Field(
        "", description="the Ed25519 public keys params are accepted from (base64, "
        "comma-separated: several during a key rotation); a process that holds the "
        "signing key also accepts its public half")
    params_name: str = Field("default", description="the param set the trading engine reads")
    scoring_model: str | None = Field(
        None, description="the one scoring model the learner learns from, \"name version\" "
        "(e.g. \"amc-scanner 3.3.1\") or \"native\" (the engine's own six components); "
        "unset = every model with a decision in the last 20 sessions, each into its own "
        "param set (the report and `analyze`: the one behind the most of them). Learning "
        "never mixes models")
    params_ttl_days: float = Field(
        14.0, gt=0, description="how long a published params version stays valid (days)"
    )
    learner_poll_s: float = Field(
        2.0, gt=0, description="how often the learner process looks for a new session"
    )
    learner_settle_s: float = Field(
        5.0, ge=0, description="the learner runs a session's cycle once its bars and the "
        "outcomes they moved have been quiet this long (they land after the session's bars)"
    )
    metrics_host: str = Field(
        "127.0.0.1", description="address of every process's /metrics and /healthz "
        "(0.0.0.0 in containers)"
    )
    metrics_port: int = Field(
        0, ge=0, le=65535, description="port of /metrics and /healthz; 0 = any free port "
        "(processes register under LEARNING_DATA_DIR/processes for `amc-learning status`)"
    )
    metrics_targets: str = Field(
        "", description="`status`: further processes to scrape, host:port, comma-separated"
    )
    api_host: str = Field("127.0.0.1", description="`serve`: the HTTP API's address "
                          "(0.0.0.0 in containers)")
    api_port: int = Field(8080, ge=0, le=65535, description="`serve`: the HTTP API's port")
    api_tokens: str = Field(
        "", description="`serve`: the bearer tokens, producer:scope[+scope]:sha256hex, "
        "comma-separated (`amc-learning api-token NAME` makes one); scopes collect, read")
    api_max_body_bytes: int = Field(
        4_194_304, ge=1024, description="`serve`: a larger request body is refused (413)")
    api_max_batch: int = Field(
        1000, ge=1, description="`serve`: events per collect request, at most (413)")
    api_rate_per_s: float = Field(
        100.0, gt=0, description="`serve`: requests per second a token may make, on average "
        "(then 429 with Retry-After)")
    api_burst: int = Field(200, ge=1, description="`serve`: requests a token may make at once")
    api_max_in_flight: int = Field(
        12, ge=1, description="`serve`: requests handled at once; the rest are answered at "
        "once with 503 and Retry-After instead of queueing (measured in BENCHMARKS.md)")
    prices_provider: Literal["alpaca", "polygon"] = Field(
        "alpaca", description="`prices sync`: where daily bars come from")
    alpaca_key_id: SecretStr | None = Field(None, description="Alpaca API key id (market data)")
    alpaca_secret_key: SecretStr | None = Field(None, description="Alpaca API secret key")
    alpaca_data_url: str = Field("https://data.alpaca.markets",
                                 description="Alpaca's market data base URL")
    alpaca_feed: Literal["iex", "sip"] = Field(
        "iex", description="Alpaca's bar feed: iex (free plans) or sip (all exchanges)")
    polygon_api_key: SecretStr | None = Field(None, description="Polygon.io API key")
    polygon_url: str = Field("https://api.polygon.io", description="Polygon's base URL")
    index_symbol: str = Field(
        "^IXIC", description="the regime detector's index; an ETF (SPY, QQQ) where the "
        "provider has no index data (Alpaca has none)")
    vix_symbol: str = Field(
        "^VIX", description="the volatility index the regimes read; empty: realised "
        "volatility of the index instead")
    prices_retries: int = Field(
        6, ge=0, description="`prices sync`: tries again after a 429, a 5xx or no answer")
    prices_max_wait_s: float = Field(
        60.0, gt=0, description="`prices sync`: the longest single wait before a retry")
    prices_poll_s: float = Field(
        900.0, gt=0, description="`consume prices`: how often it looks for a closed session")
    api_ack_timeout_s: float = Field(
        5.0, gt=0, description="`serve`: how long a collect request waits for the broker to "
        "acknowledge its events before it answers 503 with Retry-After")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "WARNING", description="log level of the consumer processes"
    )
    data_dir: Path = Field(
        default_factory=lambda: Path.cwd() / ".data",
        description="embedded PostgreSQL data, broker log, process logs [default: ./.data]",
    )

    @field_validator("outcome_horizons")
    @classmethod
    def _increasing(cls, value: str) -> str:
        short, mid, long = (int(n) for n in value.split(","))
        if not 0 < short < mid < long:
            raise ValueError(f"three increasing numbers of sessions, not {value}")
        return value

    @field_validator("params_public_keys", "params_signing_key")
    @classmethod
    def _ed25519_keys(cls, value: str | SecretStr | None) -> str | SecretStr | None:
        text = value.get_secret_value() if isinstance(value, SecretStr) else value or ""
        for key in (k.strip() for k in text.split(",") if k.strip()):
            try:
                raw = base64.b64decode(key, validate=True)
            except ValueError:
                raw = b""
            if len(raw) != 32:  # never echo a private key, even a wrong one
                raise ValueError("each key is base64 of 32 bytes, as `amc-learning "
                                 "params-keys new` prints it")
        return value

    @property
    def market(self) -> tuple[str, str]:
        """The regime detector's index and volatility index ("" for none)."""
        return self.index_symbol, self.vix_symbol

    @property
    def horizons(self) -> tuple[int, int, int]:
        """Sessions behind the tracker's short, middle and long return."""
        short, mid, long = (int(n) for n in self.outcome_horizons.split(","))
        return short, mid, long

    @property
    def learning_horizon(self) -> int:
        """The horizon the learning judges by: the middle one (`intelligence.horizon`)."""
        return self.horizons[1]

    def with_overrides(self, **changes: object) -> Settings:
        """A copy with some fields replaced (settings are frozen)."""
        return self.model_copy(update=changes)


def describe_environment() -> str:
    """The LEARNING_* variables with their meaning, for --help."""
    lines = ["environment (LEARNING_*):"]
    for name, field in Settings.model_fields.items():
        default = field.default
        shown = ("" if default in (None, "") or field.default_factory is not None
                 else f" [default: {default}]")
        lines.append(f"  LEARNING_{name.upper():<28} {field.description}{shown}")
    return "\n".join(lines)
