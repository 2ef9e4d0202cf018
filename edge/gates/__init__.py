"""Dock gate cameras: frames in by push, drop folder or stream; one event per pallet pass,
matched to expected goods (receipt, shipment, or a hold for an operator). See docs/gates.md.

``init_app`` wires the gate store, the hub (queue + worker) and the API into the edge app;
``start``/``stop`` run the background sources (``cangyun edge serve`` calls them). Imports
are deferred so ``cangyun edge gate ...`` does not load OpenCV.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    from flask import Flask

    from cangyun.box_settings import EdgeSettings
    from edge.store import EdgeStore

STORE = "cangyun.gate_store"
HUB = "cangyun.gate_hub"
SOURCES = "cangyun.gate_sources"


def init_app(app: Flask, settings: EdgeSettings, edge_store: EdgeStore) -> None:
    from edge import licence
    from edge.gates.api import create_blueprint
    from edge.gates.pipeline import GateHub
    from edge.gates.store import GateStore

    gate_store = GateStore(settings.database_path)
    app.extensions[STORE] = gate_store
    app.extensions[HUB] = GateHub(
        gate_store,
        edge_store,
        budget_ms=settings.scan.budget_ms,
        still_budget_ms=settings.scan.still_budget_ms,
        read_text=_text_reader(app),
        admit=licence.admission(edge_store, settings),
    )
    app.register_blueprint(create_blueprint())


def start(app: Flask) -> None:
    """Start the decoding worker and every configured folder and stream camera."""
    from edge.gates.sources import GateSources

    hub = app.extensions[HUB]
    hub.start()
    sources = GateSources(app.extensions[STORE].cameras, hub)
    sources.start()
    app.extensions[SOURCES] = sources


def stop(app: Flask) -> None:
    """Stop the sources, then the worker. Safe to call twice."""
    sources = app.extensions.pop(SOURCES, None)
    if sources is not None:
        sources.stop()
    hub = app.extensions.get(HUB)
    if hub is not None:
        hub.stop()


def close(app: Flask) -> None:
    """Stop everything and close the gate store (tests, and apps made and dropped)."""
    stop(app)
    store = app.extensions.pop(STORE, None)
    if store is not None:
        store.close()


def _text_reader(app: Flask) -> Any:
    """OCR lines of a frame, with the edge's shared scan engine (loaded on first use)."""

    def read(gray: np.ndarray) -> list[str]:
        from edge import scanning

        with app.app_context():
            engine = scanning.engine()
        return [line.text for line in engine.ocr.read(gray)]

    return read
