"""The event contract: pydantic models of every event and published message, and topic names."""
