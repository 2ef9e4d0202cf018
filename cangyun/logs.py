"""Logging set-up; only entry points call this."""

from __future__ import annotations

import logging
import os


def configure(level: str | None = None, name: str = "cangyun") -> None:
    level = (level or os.environ.get("CANGYUN_LOG_LEVEL") or "INFO").upper()
    logging.basicConfig(
        level=level,
        format=f"%(asctime)s {name} %(levelname)s %(name)s: %(message)s",
    )
    # paho and cheroot are chatty at INFO on every connection.
    logging.getLogger("cheroot").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
