"""Settings of the cloud API and ingest workers (one TOML file, ``CANGYUN_<SECTION>_<KEY>``
environment overrides)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cangyun.settings import load_settings, setting


@dataclass(frozen=True)
class CloudSection:
    host: str = setting("0.0.0.0", "address the API listens on")
    port: int = setting(8000, "HTTP port")
    data_dir: Path = setting(
        Path("cloud-data"), "directory for the SQLite database, keys, broker files"
    )
    database_url: str = setting(
        "",
        "SQLAlchemy URL; empty means sqlite:///<data_dir>/cloud.sqlite; PostgreSQL:"
        " postgresql+psycopg://user@host/db",
    )
    public_url: str = setting("", "URL clients use to reach this API (written into edge configs)")
    threads: int = setting(16, "HTTP worker threads")
    trusted_proxies: int = setting(
        0,
        "reverse proxies in front of the API whose X-Forwarded-For/-Proto are believed (nginx"
        " alone: 1); 0 ignores those headers, so a client cannot claim another address",
    )
    webhooks_allow_private: bool = setting(
        False, "let webhooks target private/loopback addresses (LAN integrations, tests)"
    )
    licence_sweep_s: float = setting(
        60.0, "how often ingest workers send due edge licences (daily renewals, paid orders)"
    )
    expected_sweep_s: float = setting(
        5.0, "how often ingest workers send edge boxes the expected goods (ASN lines) that changed"
    )


@dataclass(frozen=True)
class MqttSection:
    url: str = setting("mqtt://127.0.0.1:1883", "broker URL the ingest workers connect to")
    public_url: str = setting("", "broker URL edge boxes use (default: url)")
    username: str = setting("cangyun-ingest", "MQTT username of the ingest workers")
    password: str = setting("", "MQTT password of the ingest workers; better CANGYUN_MQTT_PASSWORD")
    protocol: str = setting("5", "MQTT protocol version: 5 or 3.1.1")
    share_group: str = setting(
        "ingest", "shared-subscription group; workers in one group split the load; empty: none"
    )
    keepalive: int = setting(30, "MQTT keepalive in seconds")
    ca_file: str | None = setting(None, "CA certificate for mqtts://")


@dataclass(frozen=True)
class BrokerSection:
    passwd_file: str = setting(
        "", "mosquitto password file the cloud keeps (default: data_dir/broker/passwd)"
    )
    acl_file: str = setting("", "mosquitto ACL file the cloud keeps (default: data_dir/broker/acl)")
    pid_file: str = setting("", "mosquitto pid file; the cloud sends it SIGHUP after a change")


@dataclass(frozen=True)
class SmtpSection:
    host: str = setting("", "SMTP server for password resets, login codes and reminders")
    port: int = setting(587, "SMTP port")
    security: str = setting("starttls", "starttls, ssl or none")
    username: str = setting("", "SMTP login, if the server wants one")
    password: str = setting("", "SMTP password; better CANGYUN_SMTP_PASSWORD")
    sender: str = setting("仓运通 <noreply@cangyun.local>", "From: address")


@dataclass(frozen=True)
class SmsSection:
    provider: str = setting("", "SMS provider: tencent, or empty for none")
    secret_id: str = setting("", "Tencent Cloud SecretId; better CANGYUN_SMS_SECRET_ID")
    secret_key: str = setting("", "Tencent Cloud SecretKey; better CANGYUN_SMS_SECRET_KEY")
    region: str = setting("ap-guangzhou", "Tencent Cloud region of the SMS service")
    sdk_app_id: str = setting("", "SMS SdkAppId")
    sign_name: str = setting("", "approved SMS signature (签名)")
    template_id: str = setting("", "approved template id for renewal reminders")
    endpoint: str = setting("", "override the API endpoint (host:port), e.g. a test server")
    protocol: str = setting("https", "https, or http for a local test endpoint")


@dataclass(frozen=True)
class BillingSection:
    tonne_days_per_yuan: float = setting(2.0, "tonne-days one yuan of a flow package buys")
    pieces_per_yuan: float = setting(20.0, "pieces one yuan of an item package buys")
    quota_thresholds: str = setting("20,10,0", "remaining-quota % at which reminders go out")
    period_days: str = setting("30,7,1", "days before a period package ends for reminders")
    licence_days: int = setting(
        30, "how long an edge licence holds; connected boxes get a fresh one daily"
    )
    licence_grace_days: int = setting(7, "after that, how long an offline edge keeps working")
    scheduler_interval_s: float = setting(60.0, "how often days are closed and reminders checked")


@dataclass(frozen=True)
class PaymentSection:
    payee_name: str = setting(
        "仓运通科技有限公司", "对公转账: the account holder tenants transfer to"
    )
    payee_bank: str = setting("招商银行上海分行营业部", "对公转账: the payee's bank and branch")
    payee_account: str = setting("1219 0000 0000 0000", "对公转账: the payee's account number")
    wechatpay_mchid: str = setting(
        "", "WeChat Pay merchant id (商户号); empty: the online gateway is off"
    )
    wechatpay_appid: str = setting("", "WeChat Pay appid the payments must name; empty: any")
    wechatpay_apiv3_key: str = setting(
        "", "WeChat Pay APIv3 key (32 bytes); better CANGYUN_PAYMENT_WECHATPAY_APIV3_KEY"
    )
    wechatpay_public_key_file: str = setting(
        "", "WeChat Pay platform public key (PEM) that signs the notifications"
    )
    wechatpay_public_key_id: str = setting(
        "", "its id or certificate serial, as notifications name it in Wechatpay-Serial; empty: any"
    )


@dataclass(frozen=True)
class CloudSettings:
    cloud: CloudSection = field(default_factory=CloudSection)
    mqtt: MqttSection = field(default_factory=MqttSection)
    broker: BrokerSection = field(default_factory=BrokerSection)
    smtp: SmtpSection = field(default_factory=SmtpSection)
    sms: SmsSection = field(default_factory=SmsSection)
    billing: BillingSection = field(default_factory=BillingSection)
    payment: PaymentSection = field(default_factory=PaymentSection)

    @property
    def database_url(self) -> str:
        if self.cloud.database_url:
            return self.cloud.database_url
        return f"sqlite:///{(self.cloud.data_dir / 'cloud.sqlite').resolve()}"

    @property
    def passwd_file(self) -> Path:
        return Path(self.broker.passwd_file or self.cloud.data_dir / "broker" / "passwd")

    @property
    def acl_file(self) -> Path:
        return Path(self.broker.acl_file or self.cloud.data_dir / "broker" / "acl")

    @property
    def signing_key_file(self) -> Path:
        return self.cloud.data_dir / "licence-signing.key"


def load(path: str | Path | None) -> CloudSettings:
    return load_settings(CloudSettings, path)
