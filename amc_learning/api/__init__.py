"""The HTTP way in: `amc-learning serve` (collect events, read intelligence and params)."""
