"""The learning itself: pure functions on polars frames (no IO, no Kafka, no SQL)."""
