"""Consumer processes (persist; later outcomes, learner), the shared loop, database access."""
