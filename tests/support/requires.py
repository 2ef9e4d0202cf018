"""What a test needs from the machine, checked in one place.

A missing dependency fails the test and names the command that installs it: a suite that
skips what it cannot run says "passed" about code it never ran. A partial run is asked for
by name, ``CANGYUN_SKIP=browser,fonts`` (or ``all``); only then does such a test skip.
PostgreSQL is the exception: optional, and the summary says when it was not there.
"""

from __future__ import annotations

import os
import shutil

import pytest

INSTALL = "make install  (as root; or: sudo bash devtools/system-deps.sh)"
KINDS = {
    "browser": "headless Chromium (Debian's chromium)",
    "fonts": "CJK label fonts (fonts-noto-cjk, fonts-wqy-zenhei, fonts-wqy-microhei)",
    "mosquitto": "the mosquitto MQTT broker",
    "zbar": "the ZBar library (libzbar0)",
}


def skipped(kind: str) -> bool:
    asked = {part.strip() for part in os.environ.get("CANGYUN_SKIP", "").split(",")}
    return kind in asked or "all" in asked


def need(kind: str, present: bool, detail: str = "") -> None:
    """Go on if ``present``; else skip when the run asked to leave ``kind`` out, or fail."""
    if present:
        return
    what = f"{KINDS[kind]} is missing" + (f" ({detail})" if detail else "")
    if skipped(kind):
        pytest.skip(f"{what}; CANGYUN_SKIP={os.environ.get('CANGYUN_SKIP')}")
    pytest.fail(f"{what}: run {INSTALL}, or set CANGYUN_SKIP={kind} for a partial run")


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    need("browser", False, "no chromium on PATH")
    raise AssertionError("unreachable")


def mosquitto() -> str:
    found = shutil.which("mosquitto")
    need("mosquitto", found is not None, "no mosquitto on PATH")
    return found or ""
