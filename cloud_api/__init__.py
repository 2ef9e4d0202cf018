"""The cloud: HTTP API and console, MQTT ingest, tenants, ledger, stock, provisioning."""
