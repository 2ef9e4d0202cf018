"""SMS out: a small ``SmsSender`` interface and its Tencent Cloud adapter.

The adapter uses the modular ``tencentcloud-sdk-python-sms`` package (only the SMS module of
the SDK). Every message goes through one approved template (``[sms] template_id``) with the
approved signature (``[sms] sign_name``); the reminder supplies the template parameters.
``[sms] endpoint`` and ``protocol`` point the client elsewhere, e.g. at a local test server.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Protocol

from cloud_api.settings import SmsSection

log = logging.getLogger(__name__)

TIMEOUT_S = 15
DEFAULT_ENDPOINT = "sms.tencentcloudapi.com"
# Codes that no retry can fix: the number itself is wrong or refused.
PERMANENT_CODES = frozenset(
    {
        "InvalidParameterValue.IncorrectPhoneNumber",
        "FailedOperation.PhoneNumberParseFail",
        "FailedOperation.PhoneNumberInBlacklist",
    }
)


class SmsError(RuntimeError):
    """The provider did not accept the message. ``permanent``: retrying cannot help."""

    def __init__(self, message: str, *, code: str = "", permanent: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.permanent = permanent


class SmsNotConfigured(SmsError):
    def __init__(self, reason: str) -> None:
        super().__init__(f"no SMS provider configured: {reason}", permanent=True)


class SmsSender(Protocol):
    def send(self, phone: str, params: Sequence[str], *, reference: str = "") -> None:
        """Send the reminder template to one E.164 number; raise ``SmsError`` if refused."""
        ...


def to_e164(phone: str) -> str:
    """``13800000000`` → ``+8613800000000``; numbers with a country code are kept.

    Raises ValueError for anything that is not a plausible phone number.
    """
    digits = re.sub(r"[\s\-().]", "", phone or "")
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    if re.fullmatch(r"1[3-9]\d{9}", digits):  # mainland mobile, the common case
        return "+86" + digits
    if re.fullmatch(r"86(1[3-9]\d{9})", digits):
        return "+" + digits
    if re.fullmatch(r"\+[1-9]\d{6,14}", digits):
        return digits
    raise ValueError(f"{phone!r} is not a mobile number (11 digits, or +country code)")


def sender_for(settings: SmsSection) -> SmsSender:
    """The configured sender, or ``SmsNotConfigured`` saying what is missing."""
    if not settings.provider:
        raise SmsNotConfigured("[sms] provider is empty")
    if settings.provider != "tencent":
        raise SmsNotConfigured(f"unknown provider {settings.provider!r} (supported: tencent)")
    missing = [
        name
        for name in ("secret_id", "secret_key", "sdk_app_id", "sign_name", "template_id")
        if not getattr(settings, name)
    ]
    if missing:
        raise SmsNotConfigured(f"[sms] {', '.join(missing)} not set")
    return TencentSms(settings)


class TencentSms:
    """Tencent Cloud SMS, API version 2021-01-11 (``SendSms``)."""

    def __init__(self, settings: SmsSection) -> None:
        self.settings = settings

    def send(self, phone: str, params: Sequence[str], *, reference: str = "") -> None:
        # Imported here so that modules using only ``to_e164`` need not load the SDK.
        from tencentcloud.common import credential
        from tencentcloud.common.exception.tencent_cloud_sdk_exception import (
            TencentCloudSDKException,
        )
        from tencentcloud.common.profile.client_profile import ClientProfile
        from tencentcloud.common.profile.http_profile import HttpProfile
        from tencentcloud.sms.v20210111 import models, sms_client

        s = self.settings
        http = HttpProfile(
            endpoint=s.endpoint or DEFAULT_ENDPOINT, protocol=s.protocol, reqTimeout=TIMEOUT_S
        )
        client = sms_client.SmsClient(
            credential.Credential(s.secret_id, s.secret_key),
            s.region,
            ClientProfile(httpProfile=http),
        )
        request = models.SendSmsRequest()
        request.PhoneNumberSet = [phone]
        request.SmsSdkAppId = s.sdk_app_id
        request.SignName = s.sign_name
        request.TemplateId = s.template_id
        request.TemplateParamSet = [str(p) for p in params]
        if reference:
            request.SessionContext = reference[:500]
        try:
            response = client.SendSms(request)
        except TencentCloudSDKException as exc:
            code = exc.get_code() or "SdkError"
            raise SmsError(
                f"Tencent SMS {code}: {exc.get_message()}",
                code=code,
                permanent=code in PERMANENT_CODES,
            ) from exc
        statuses = response.SendStatusSet or []
        if not statuses:
            raise SmsError("Tencent SMS answered without a send status", code="NoStatus")
        for status in statuses:
            if status.Code != "Ok":
                raise SmsError(
                    f"Tencent SMS {status.Code}: {status.Message}",
                    code=status.Code or "",
                    permanent=status.Code in PERMANENT_CODES,
                )
        log.info("SMS to %s accepted (serial %s)", phone, statuses[0].SerialNo)
