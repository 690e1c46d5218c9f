"""The Faust application: thin glue between Kafka topics and `monitor`'s engine."""
