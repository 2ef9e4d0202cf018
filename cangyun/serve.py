"""Serve a WSGI app with cheroot until SIGTERM/SIGINT; used by every HTTP entry point."""

from __future__ import annotations

import logging
import ssl
import threading
from collections.abc import Callable
from typing import Any

from cheroot import wsgi
from cheroot.ssl.builtin import BuiltinSSLAdapter

from cangyun.stopsignal import on_stop_signal

log = logging.getLogger(__name__)


def make_server(
    app: Callable[..., Any],
    host: str,
    port: int,
    *,
    threads: int = 16,
    certfile: str | None = None,
    keyfile: str | None = None,
    name: str = "cangyun",
) -> wsgi.Server:
    server = wsgi.Server((host, port), app, numthreads=threads, server_name=name)
    # Requests larger than this are cut off before Flask sees them (the app enforces smaller
    # limits per route); it keeps a hostile upload from filling memory.
    server.max_request_body_size = 64 * 1024 * 1024
    if certfile and keyfile:
        server.ssl_adapter = BuiltinSSLAdapter(certfile, keyfile)
        server.ssl_adapter.context.minimum_version = ssl.TLSVersion.TLSv1_2
    return server


def serve_forever(
    servers: list[wsgi.Server],
    on_ready: Callable[[], None] | None = None,
    *,
    optional: list[wsgi.Server] | None = None,
) -> None:
    """Run the servers (e.g. HTTPS and HTTP side by side) until a stop signal arrives.

    An ``optional`` server that cannot bind its port is logged and left out instead of
    stopping the others (the edge's HTTPS port next to its HTTP API)."""
    stop = threading.Event()

    def _stop(name: str) -> None:
        log.info("signal %s: stopping", name)
        stop.set()

    on_stop_signal(_stop)
    for server in servers:
        server.prepare()
    running = list(servers)
    for server in optional or []:
        try:
            server.prepare()
        except OSError as exc:
            log.error("cannot listen on %s (%s); carrying on without it", server.bind_addr, exc)
            continue
        running.append(server)
    for server in running:
        thread = threading.Thread(target=server.serve, name=f"http-{server.bind_addr}", daemon=True)
        thread.start()
        log.info("listening on %s", server.bind_addr)
    if on_ready:
        on_ready()
    stop.wait()
    for server in running:
        server.stop()
