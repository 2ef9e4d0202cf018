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
from cloud_api.accounts import store as accounts
from cloud_api.app import create_app
from cloud_api.settings import (
    CloudSection,
    CloudSettings,
    MqttSection,
    PaymentSection,
    SmtpSection,
)

STRONG = "Strong-pass-2026"
# The platform staff member who confirms the transfers Cloud.buy pays with.
STAFF_EMAIL = "cashier@cangyun.test"


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
        """Order packages (and add-ons) as a customer would, and pay each by bank transfer:
        platform staff confirm the order's total arrived."""
        bought = []
        for body in [
            {"edition": edition, "billing_mode": billing_mode, "quantity": quantity, **extra}
        ] + [{"add_on": a, "quantity": 1} for a in add_ons]:
            order = self.call("POST", "/api/v1/orders", token, json=body)
            assert order.status_code == 201, order.get_json()
            paid = self.confirm(order.get_json())
            assert paid.status_code == 200, paid.get_json()
            bought.append(paid.get_json())
        return bought

    def staff_token(self) -> str:
        """A signed-in platform staff member (made on first use, signed in once per Cloud)."""
        if "staff" not in self.tokens:
            accounts.ensure_platform_staff(self.engine, STAFF_EMAIL, STRONG)
            signed_in = self.login(STAFF_EMAIL)
            assert signed_in.status_code == 200, signed_in.get_json()
            self.tokens["staff"] = signed_in.get_json()["token"]
        return self.tokens["staff"]

    def confirm(
        self, order: dict[str, Any], amount_yuan: Any = None, bank_reference: str | None = None
    ) -> Any:
        """Staff confirm a transfer for ``order``: its total, unless told otherwise."""
        body = {
            "amount_yuan": order["payment"]["amount_yuan"] if amount_yuan is None else amount_yuan,
            "bank_reference": bank_reference or f"TRANSFER-{order['id']}",
        }
        return self.call(
            "POST", f"/api/v1/platform/orders/{order['id']}/confirm", self.staff_token(), json=body
        )

    def login(self, email: str, password: str = STRONG, **kwargs: Any) -> Any:
        body = {"email": email, "password": password}
        return self.call("POST", "/api/v1/auth/login", json=body, **kwargs)


def confirm_over_http(
    http: Any, cloud_url: str, engine: Any, order: dict[str, Any], bank_reference: str
) -> Any:
    """Cloud.confirm against a cloud running as a server (tests.support.stack): platform
    staff sign in and confirm that the order's total arrived by bank transfer."""
    accounts.ensure_platform_staff(engine, STAFF_EMAIL, STRONG)
    login = {"email": STAFF_EMAIL, "password": STRONG}
    token = http.post(f"{cloud_url}/api/v1/auth/login", json=login, timeout=30).json()["token"]
    return http.post(
        f"{cloud_url}/api/v1/platform/orders/{order['id']}/confirm",
        headers={"Authorization": f"Bearer {token}"},
        json={"amount_yuan": order["payment"]["amount_yuan"], "bank_reference": bank_reference},
        timeout=30,
    )


def make_cloud(
    tmp_path: Path,
    database_url: str,
    *,
    smtp_port: int | None = None,
    payment: PaymentSection | None = None,
) -> Cloud:
    settings = CloudSettings(
        cloud=CloudSection(
            data_dir=tmp_path / "cloud", database_url=database_url, webhooks_allow_private=True
        ),
        mqtt=MqttSection(password="ingest-secret"),
        smtp=SmtpSection(
            host="127.0.0.1" if smtp_port else "", port=smtp_port or 25, security="none"
        ),
        payment=payment or PaymentSection(),
    )
    engine = provisioning.init(settings)
    return Cloud(settings, create_app(settings, {"CHECK_RESPONSES": True}, engine=engine), engine)


def code_in(text: str) -> str:
    match = re.search(r"\b(\d{6})\b", text)
    assert match, text
    return match.group(1)


__all__ = [
    "STAFF_EMAIL",
    "Cloud",
    "SmtpServer",
    "body_text",
    "code_in",
    "confirm_over_http",
    "make_cloud",
    "replace",
]
