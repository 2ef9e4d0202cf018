"""The edge box: PDA web app and API, gate cameras, local store (movements, outbox, stock)."""
