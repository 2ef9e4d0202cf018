"""``cangyun scan`` (files from the command line) and ``cangyun ocr serve`` (HTTP service)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from cangyun import logs


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="one JSON object per image (JSON Lines)")
@click.option("--no-ocr", is_flag=True, help="barcodes only, skip label text recognition")
@click.option("--text", "with_text", is_flag=True, help="include the recognised text lines")
@click.option(
    "--engine",
    "engine_name",
    default="rapidocr",
    show_default=True,
    type=click.Choice(["rapidocr", "paddleocr"]),
    help="OCR engine",
)
@click.option("--threads", default=2, show_default=True, help="OCR threads")
@click.option(
    "--budget-ms",
    default=1000.0,
    show_default=True,
    help="time for the barcode search of each photo (a still: every symbol in it)",
)
def scan(
    files: tuple[str, ...],
    as_json: bool,
    no_ocr: bool,
    with_text: bool,
    engine_name: str,
    threads: int,
    budget_ms: float,
) -> None:
    """Read barcodes, GS1 data and label fields from image files.

    Exit status 0 when every file was read (even with nothing found), 1 when a file could
    not be read as an image.

    \b
    Examples:
      cangyun scan --json label.jpg pallet.png
      cangyun scan --no-ocr --json photos/*.jpg > results.jsonl
    """
    from ocr_service.engine import ScanEngine
    from ocr_service.images import ImageError
    from ocr_service.ocr import OcrUnavailable

    logs.configure(level="WARNING", name="scan")
    engine = ScanEngine(
        ocr_engine=engine_name, ocr_options={"threads": threads}, still_budget_ms=budget_ms
    )
    failed = False
    show_progress = len(files) > 1 and sys.stderr.isatty()
    with click.progressbar(
        files, label="scanning", file=sys.stderr, hidden=not show_progress
    ) as progress:
        for name in progress:
            record: dict = {"file": name}
            try:
                result = engine.scan(Path(name).read_bytes(), ocr=not no_ocr, mode="still")
                record |= result.to_json(with_text=with_text)
            except OSError as exc:
                record["error"] = {"code": "unreadable_file", "message": str(exc)}
            except ImageError as exc:
                record["error"] = {"code": exc.code, "message": exc.message}
            except OcrUnavailable as exc:
                raise click.ClickException(str(exc)) from exc
            failed = failed or "error" in record
            if as_json:
                click.echo(json.dumps(record, ensure_ascii=False))
            else:
                _print_human(record)
    sys.exit(1 if failed else 0)


def _print_human(record: dict) -> None:
    click.echo(click.style(record["file"], bold=True))
    if "error" in record:
        click.echo(f"  error: {record['error']['code']}: {record['error']['message']}")
        return
    for barcode in record["barcodes"]:
        click.echo(f"  {barcode['format']:<16} {barcode['text']}")
    for name, value in record["fields"].items():
        click.echo(f"  {name:<16} {value}  ({record['field_sources'].get(name)})")
    for conflict in record["conflicts"]:
        click.echo(
            f"  conflict {conflict['field']}: barcode {conflict['barcode']!r}"
            f" vs label {conflict['ocr']!r}"
        )
    click.echo(f"  {record['timings_ms']}")


@click.group()
def ocr() -> None:
    """The scanning engine as an HTTP service."""


def loopback_only(host: str) -> bool:
    """Whether a listen address is reachable from this machine only."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


@ocr.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8090, show_default=True)
@click.option("--threads", default=2, show_default=True, help="OCR threads")
@click.option(
    "--engine",
    "engine_name",
    default="rapidocr",
    show_default=True,
    type=click.Choice(["rapidocr", "paddleocr"]),
)
@click.option(
    "--token",
    envvar="CANGYUN_OCR_TOKEN",
    default="",
    help="bearer token callers must send (env CANGYUN_OCR_TOKEN; edge: scan.ocr_token);"
    " required unless --host is a loopback address",
)
@click.option(
    "--still-budget-ms",
    default=1000.0,
    show_default=True,
    help="barcode search time for a still (the default mode; ?mode=frame gets 30 ms)",
)
def serve(
    host: str, port: int, threads: int, engine_name: str, token: str, still_budget_ms: float
) -> None:
    """Serve POST /v1/scan for edge boxes that share one scanning engine.

    Listening beyond loopback needs a token; set the same one as scan.ocr_token on each
    edge box.

    \b
    Example:
      CANGYUN_OCR_TOKEN=$(openssl rand -hex 32) cangyun ocr serve --host 0.0.0.0 --port 8090
      curl --data-binary @label.jpg -H 'Content-Type: image/jpeg' \\
           -H "Authorization: Bearer $CANGYUN_OCR_TOKEN" http://127.0.0.1:8090/v1/scan
    """
    from cangyun.serve import make_server, serve_forever
    from ocr_service.app import create_app
    from ocr_service.engine import ScanEngine

    token = token.strip()
    if not token and not loopback_only(host):
        raise click.UsageError(
            f"listening on {host} needs a token: set CANGYUN_OCR_TOKEN (or --token), and the"
            " same as scan.ocr_token on the edge boxes; only a loopback --host may go without"
        )
    logs.configure(name="ocr")
    engine = ScanEngine(
        ocr_engine=engine_name, ocr_options={"threads": threads}, still_budget_ms=still_budget_ms
    )
    engine.ocr  # load the models before taking traffic  # noqa: B018
    app = create_app(engine, token=token)
    serve_forever([make_server(app, host, port, threads=4, name="cangyun-ocr")])
