"""The whole system on one machine: embedded Kafka-compatible broker, moto server, runners."""
