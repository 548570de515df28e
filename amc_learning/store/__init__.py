"""The database: the migrations and their runner, the idempotent sink, what the learner
reads (frames) and writes (results)."""
