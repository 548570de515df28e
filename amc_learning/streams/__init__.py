"""The Kafka edge: topics, client options, the producer SDK and (later) the params reader."""
