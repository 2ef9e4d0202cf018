"""Email out through a real SMTP server; shared by password resets, login codes and renewal
reminders. Configured in the ``[smtp]`` settings; without a host, mail is logged and
reported as not sent (nothing pretends to deliver it)."""

from __future__ import annotations

import logging
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from cloud_api.settings import SmtpSection

log = logging.getLogger(__name__)
TIMEOUT_S = 15


class MailError(RuntimeError):
    """The message could not be handed to the SMTP server."""


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    body: str


class SmtpMailer:
    def __init__(self, settings: SmtpSection) -> None:
        self.settings = settings

    @property
    def configured(self) -> bool:
        return bool(self.settings.host)

    def send(self, mail: Mail) -> None:
        if not self.configured:
            raise MailError("no SMTP server is configured ([smtp] host)")
        message = EmailMessage()
        message["From"] = self.settings.sender
        message["To"] = mail.to
        message["Subject"] = mail.subject
        message["Date"] = formatdate(localtime=True)
        message["Message-ID"] = make_msgid(domain="cangyun")
        message.set_content(mail.body)
        s = self.settings
        try:
            if s.security == "ssl":
                client: smtplib.SMTP = smtplib.SMTP_SSL(
                    s.host, s.port, timeout=TIMEOUT_S, context=ssl.create_default_context()
                )
            else:
                client = smtplib.SMTP(s.host, s.port, timeout=TIMEOUT_S)
            with client:
                if s.security == "starttls":
                    client.starttls(context=ssl.create_default_context())
                if s.username:
                    client.login(s.username, s.password)
                client.send_message(message)
        except (OSError, smtplib.SMTPException) as exc:
            raise MailError(f"SMTP {s.host}:{s.port} refused the message: {exc}") from exc
        log.info("mail to %s: %s", mail.to, mail.subject)
