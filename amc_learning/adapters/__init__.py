"""From what real producers write to the contract: pure functions from a producer's native
records (AMC-Trader's files and payloads, Alpaca's order and fill shapes) to events."""
