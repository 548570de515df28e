"""The learning use cases, as plain functions over the store and the Kafka edge: called
alike by the processes, the CLI and replay."""
