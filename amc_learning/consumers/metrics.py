"""The metrics of the consumer processes (Prometheus conventions: `_total`, `_seconds`).

The `consumer` label names the process kind (persist, outcomes, replay); `topic` is the
full topic name.
"""

from __future__ import annotations

from prometheus_client import Counter as Total
from prometheus_client import Gauge, Histogram

CONSUMED = Total("learning_events_consumed_total", "records handled and committed",
                 ["consumer", "topic"])
STORED = Total("learning_events_stored_total", "records accepted into PostgreSQL and committed "
               "(a replayed duplicate counts, its row is not inserted twice)",
               ["consumer", "topic"])
REJECTED = Total("learning_events_rejected_total", "records sent to the dead-letter topic",
                 ["consumer", "topic", "reason"])
INSERTED = Total("learning_rows_inserted_total", "rows inserted", ["consumer", "table"])
RETRIED = Total("learning_batch_retries_total", "batches retried after a transient failure",
                ["consumer"])
BATCH = Histogram("learning_batch_records", "records per stored batch", ["consumer"],
                  buckets=(1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000))
STORE = Histogram("learning_store_seconds", "one batch's database transaction", ["consumer"],
                  buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
LATENCY = Histogram("learning_event_latency_seconds", "record published -> stored and "
                    "committed, for the oldest record of each partition in a batch",
                    ["consumer", "topic"],
                    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800))
LAG = Gauge("learning_consumer_lag", "records between the committed position and the "
            "partition's end, as of the last batch", ["consumer", "topic", "partition"])
OUTCOMES_PUBLISHED = Total("learning_outcomes_published_total",
                           "outcome updates the tracker published")
OUTCOMES_REBUILT = Total("learning_outcomes_rebuilt_total", "open decisions and never-decided "
                         "candidates the tracker's state had lost, published again from "
                         "PostgreSQL at its start", ["kind"])
OUTCOMES_RESTARTS = Gauge("learning_outcomes_restarts", "restarts in place in a row "
                          "(continuity guard or stall watchdog) before the last batch")
CYCLE_SECONDS = Histogram("learning_cycle_seconds", "one learning cycle, start to end",
                          ["kind"], buckets=(0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900))
CYCLE_FAILURES = Total("learning_cycle_failures_total", "learning cycles that raised", ["kind"])
CYCLE_LAST_SUCCESS = Gauge("learning_cycle_last_success_timestamp_seconds",
                           "when the last cycle of the kind completed (Unix time)", ["kind"])
LIVE_VERSION = Gauge("learning_params_live_version", "the live params version (0: fallback)")
LIVE_ECE = Gauge("learning_params_live_ece", "expected calibration error of the live params' "
                 "calibration on the last 20 sessions of complete outcomes")
DATA_QUALITY = Gauge("learning_data_quality_findings", "fields of a producer's scoring model "
                     "that look broken in the last 30 days of candidates, as of the last daily "
                     "cycle (stuck at one value, missing more often, beyond the declared "
                     "scale)", ["producer", "scoring_model", "kind"])
LIVE_HIT_RATE = Gauge("learning_params_live_hit_rate", "share of BUY/SELL decisions of the "
                      "last 20 sessions of complete outcomes that won")
PRICES_PUBLISHED = Total("learning_prices_bars_published_total",
                         "daily bars the market-data bridge published", ["provider"])
PRICES_WAITED = Total("learning_prices_waited_seconds_total", "seconds the bridge waited "
                      "before asking a provider again (rate limits, server errors)",
                      ["provider"])
PRICES_THROTTLED = Total("learning_prices_throttled_total", "provider answers that were 429",
                         ["provider"])
PRICES_FAILURES = Total("learning_prices_sync_failures_total",
                        "syncs that stopped (the provider unreachable, the keys refused)",
                        ["provider"])
PRICES_WAITING = Gauge("learning_prices_symbols_waiting",
                       "symbols with sessions the tracker needs and no bar, after the last "
                       "sync")
PRICES_LAST_SUCCESS = Gauge("learning_prices_last_success_timestamp_seconds",
                            "when the last sync completed (Unix time)")
