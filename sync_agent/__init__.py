"""Sync agent: edge outbox → MQTT → cloud, and the cloud's acks and commands back."""
