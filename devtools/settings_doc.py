"""Render docs/configuration.md from the settings classes (``python -m devtools.settings_doc``).

A test compares the file with this rendering, so the reference cannot drift from the code.
"""

from __future__ import annotations

import sys
from pathlib import Path

from cangyun.settings import describe_settings

HEADER = """# Configuration

Both files are TOML; every key can also be set from the environment as
`CANGYUN_<SECTION>_<KEY>` (e.g. `CANGYUN_MQTT_PASSWORD`), which is the better place for
secrets. Unknown keys and wrong types stop the service at start-up with a message naming
the key. `cangyun cloud device create` writes an edge file; `cangyun cloud init` writes a
cloud file when none exists.

This page is generated: `python -m devtools.settings_doc`.
"""


def render() -> str:
    from cangyun.box_settings import EdgeSettings
    from cloud_api.settings import CloudSettings

    parts = [HEADER]
    for title, cls in (
        ("Edge box (`cangyun edge serve`, `cangyun sync`)", EdgeSettings),
        ("Cloud (`cangyun cloud serve`, `cangyun cloud ingest`)", CloudSettings),
    ):
        parts.append(f"\n## {title}\n\n| key | default | meaning |\n|---|---|---|")
        for key, default, help_text in describe_settings(cls):
            shown = "" if default is None else '`""`' if default == "" else f"`{default}`"
            parts.append(f"| `{key}` | {shown} | {help_text} |")
    return "\n".join(parts) + "\n"


def main() -> None:
    target = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"
    target.write_text(render(), encoding="utf-8")
    sys.stdout.write(f"wrote {target}\n")


if __name__ == "__main__":
    main()
