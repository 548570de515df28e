"""A seeded market and discovery/thesis/trading simulator with planted ground truth."""
