"""A cloud app on a real database, driven through Flask's test client, plus a real SMTP
server (aiosmtpd) that keeps what it receives."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field, replace
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from cangyun.processes import free_port
from cloud_api import provisioning
from cloud_api.app import create_app
from cloud_api.settings import CloudSection, CloudSettings, MqttSection, SmtpSection

STRONG = "Strong-pass-2026"


class Inbox:
    """Handler for aiosmtpd: every accepted message, parsed."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.arrived = threading.Condition()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        with self.arrived:
            self.messages.append(message_from_bytes(envelope.content))
            self.arrived.notify_all()
        return "250 OK"

    def wait_for(self, to: str, count: int = 1, timeout: float = 10.0) -> list[Message]:
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.to(to)) >= count, timeout)
        return self.to(to)

    def to(self, address: str) -> list[Message]:
        return [m for m in self.messages if address in m["To"]]


def body_text(message: Message) -> str:
    payload = message.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode(message.get_content_charset() or "utf-8")


class SmtpServer:
    def __init__(self) -> None:
        self.inbox = Inbox()
        self.port = free_port()
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)

    def __enter__(self) -> SmtpServer:
        self.controller.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.controller.stop()


@dataclass
class Cloud:
    settings: CloudSettings
    app: Any
    engine: Any
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def client(self) -> Any:
        return self.app.test_client()

    def call(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> Any:
        headers = kwargs.pop("headers", {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return self.client.open(path, method=method, headers=headers, **kwargs)

    def register(self, name: str, email: str, password: str = STRONG) -> dict[str, Any]:
        response = self.call(
            "POST",
            "/api/v1/auth/register",
            json={
                "tenant_name": name,
                "email": email,
                "password": password,
                "phone": "13800000000",
            },
        )
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    def buy(
        self,
        token: str,
        edition: str = "professional",
        billing_mode: str = "flow",
        quantity: int = 1,
        add_ons: tuple[str, ...] = ("managed_operations",),
        **extra: Any,
    ) -> list[dict[str, Any]]:
        """Order and pay a package (and add-ons) through the API, as a customer would."""
        bought = []
        for body in [
            {"edition": edition, "billing_mode": billing_mode, "quantity": quantity, **extra}
        ] + [{"add_on": a, "quantity": 1} for a in add_ons]:
            order = self.call("POST", "/api/v1/orders", token, json=body)
            assert order.status_code == 201, order.get_json()
            order_id = order.get_json()["id"]
            paid = self.call(
                "POST",
                f"/api/v1/orders/{order_id}/pay",
                token,
                json={"payment_reference": f"TEST-{edition}-{order_id}-{body}"[:90]},
            )
            assert paid.status_code == 200, paid.get_json()
            bought.append(paid.get_json())
        return bought

    def login(self, email: str, password: str = STRONG, **kwargs: Any) -> Any:
        body = {"email": email, "password": password}
        return self.call("POST", "/api/v1/auth/login", json=body, **kwargs)


def make_cloud(tmp_path: Path, database_url: str, *, smtp_port: int | None = None) -> Cloud:
    settings = CloudSettings(
        cloud=CloudSection(
            data_dir=tmp_path / "cloud", database_url=database_url, webhooks_allow_private=True
        ),
        mqtt=MqttSection(password="ingest-secret"),
        smtp=SmtpSection(
            host="127.0.0.1" if smtp_port else "", port=smtp_port or 25, security="none"
        ),
    )
    engine = provisioning.init(settings)
    return Cloud(settings, create_app(settings, {"CHECK_RESPONSES": True}, engine=engine), engine)


def code_in(text: str) -> str:
    match = re.search(r"\b(\d{6})\b", text)
    assert match, text
    return match.group(1)


__all__ = ["Cloud", "SmtpServer", "body_text", "code_in", "make_cloud", "replace"]
