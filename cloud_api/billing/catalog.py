"""The product catalog, exactly as the seed states it: four editions, their billing modes and
prices per 套 (package), the feature matrix and the value-added services. Pure data and
pricing; no SQL.

The seed does not say how much one 套 holds. That is configuration (``[catalog]`` settings)
with these documented defaults: 0.5 yuan per tonne-day and 0.05 yuan per piece of platform
fee, and one year per period package.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from cangyun.errors import DomainError, Forbidden

FEATURES: tuple[tuple[str, str, str], ...] = (
    ("registration", "注册登录", "Registration and login"),
    ("warehouse", "仓库管理", "Warehouse management"),
    ("crm", "客户关系管理", "Customer relationship management"),
    ("inbound", "入库管理", "Inbound"),
    ("outbound", "出库管理", "Outbound"),
    ("security_policy", "安全策略", "Security policy"),
    ("task_management", "任务管理", "Task management"),
    ("value_added_services", "增值服务", "Value-added services"),
    ("industry_plugins", "行业插件", "Industry plugins"),
    ("alerts", "预警管理", "Alert management"),
    ("charges", "收费管理", "Charges management"),
    ("secondary_development", "二次开发管理", "Secondary development"),
)
FEATURE_CODES = tuple(code for code, _, _ in FEATURES)
_BASE = {"registration", "warehouse", "crm", "inbound", "outbound", "security_policy", "alerts",
         "charges"}  # fmt: skip

# The seed's 版本功能 table, column by column.
EDITION_FEATURES: dict[str, frozenset[str]] = {
    "basic": frozenset(_BASE | {"task_management", "value_added_services"}),
    "standard": frozenset(_BASE | {"value_added_services", "secondary_development"}),
    "professional": frozenset(
        _BASE
        | {"task_management", "value_added_services", "industry_plugins", "secondary_development"}
    ),
    "traceability": frozenset(_BASE | {"secondary_development"}),
}
EDITION_NAMES = {
    "traceability": ("溯源版", "Traceability"),
    "basic": ("基础版", "Basic"),
    "standard": ("标准版", "Standard"),
    "professional": ("专业版", "Professional"),
}
EDITION_ORDER = ("traceability", "basic", "standard", "professional")

UNITS = {"flow": "tonne_day", "item": "piece", "period": "year"}
MODE_NAMES = {
    "flow": ("按流量（吨·天）", "by flow (tonne-days)"),
    "item": ("按 ITEM（件数）", "by item (pieces)"),
    "period": ("按周期（年）", "by period (year)"),
}
# A custom-service order (定制服务): one piece of work at the price staff quoted; paying it
# buys no package (cloud_api.custom_services).
QUOTED, SERVICE = "quoted", "service"
AREA_LIMIT_M2 = Decimal(100)  # traceability period price: ≤ 100 m² business area or above


@dataclass(frozen=True)
class Price:
    edition: str
    billing_mode: str  # flow | item | period
    price_yuan: Decimal
    area: str | None = None  # period only: le_100 | gt_100

    @property
    def unit(self) -> str:
        return UNITS[self.billing_mode]


# The seed's 版本价格 table, row by row (yuan per 套).
PRICES: tuple[Price, ...] = (
    Price("traceability", "flow", Decimal(5000)),
    Price("traceability", "period", Decimal(2000), "le_100"),
    Price("traceability", "period", Decimal(3000), "gt_100"),
    Price("basic", "flow", Decimal(50000)),
    Price("basic", "item", Decimal(50000)),
    Price("standard", "flow", Decimal(100000)),
    Price("standard", "item", Decimal(100000)),
    Price("professional", "flow", Decimal(150000)),
    Price("professional", "item", Decimal(150000)),
)

VALUE_ADDED_SERVICES: tuple[tuple[str, str, str], ...] = (
    ("ocr_scanning", "OCR 扫描", "OCR scanning at inbound"),
    ("managed_operations", "代运营服务", "Managed operations"),
    ("custom_services", "定制服务", "Custom services (quoted on request)"),
)
VALUE_ADDED_CODES = tuple(code for code, _, _ in VALUE_ADDED_SERVICES)


@dataclass(frozen=True)
class PackageSizes:
    """How much one 套 holds (configuration; the seed leaves it open)."""

    tonne_days_per_yuan: Decimal = Decimal(2)  # 0.5 yuan per tonne-day
    pieces_per_yuan: Decimal = Decimal(20)  # 0.05 yuan per piece
    years_per_period_package: int = 1
    # Add-ons bought separately, yuan per year; custom services are quoted, not sold here.
    add_on_prices: dict[str, Decimal] = field(
        default_factory=lambda: {
            "ocr_scanning": Decimal(6000),
            "managed_operations": Decimal(24000),
        }
    )

    @classmethod
    def from_settings(cls, billing: Any) -> PackageSizes:
        """From the ``[billing]`` settings section."""
        return cls(
            tonne_days_per_yuan=Decimal(str(billing.tonne_days_per_yuan)),
            pieces_per_yuan=Decimal(str(billing.pieces_per_yuan)),
        )

    def units_per_package(self, price: Price) -> Decimal:
        if price.billing_mode == "flow":
            return price.price_yuan * self.tonne_days_per_yuan
        if price.billing_mode == "item":
            return price.price_yuan * self.pieces_per_yuan
        return Decimal(self.years_per_period_package)


class OrderError(DomainError, ValueError):
    """An order the catalog cannot price; ``code`` is the API error code (HTTP 400)."""

    def __init__(self, code: str, message: str, field_name: str | None = None) -> None:
        super().__init__(message, code=code, field=field_name)


@dataclass(frozen=True)
class Quote:
    edition: str | None
    add_on: str | None
    billing_mode: str
    unit: str
    quantity: int
    unit_price_yuan: Decimal
    total_yuan: Decimal
    units: Decimal  # tonne-days, pieces or years the order buys
    area: str | None = None


def price_for(edition: str, billing_mode: str, area_m2: Decimal | None = None) -> Price:
    if edition not in EDITION_FEATURES:
        raise OrderError(
            "unknown_edition", f"edition must be one of {', '.join(EDITION_ORDER)}", "edition"
        )
    offered = [p for p in PRICES if p.edition == edition and p.billing_mode == billing_mode]
    if not offered:
        modes = sorted({p.billing_mode for p in PRICES if p.edition == edition})
        raise OrderError(
            "billing_mode_not_offered",
            f"{edition} is sold {' or '.join(modes)}, not {billing_mode}",
            "billing_mode",
        )
    if billing_mode != "period":
        return offered[0]
    if area_m2 is None:
        raise OrderError(
            "missing_field", "a period package needs business_area_m2", "business_area_m2"
        )
    if area_m2 <= 0:
        raise OrderError("invalid_field", "business_area_m2 must be positive", "business_area_m2")
    tier = "le_100" if area_m2 <= AREA_LIMIT_M2 else "gt_100"
    return next(p for p in offered if p.area == tier)


def quote(order: dict[str, Any], sizes: PackageSizes) -> Quote:
    """Price an order document; every rule of the seed that can refuse one is checked here."""
    if not isinstance(order, dict):
        raise OrderError("invalid_body", "an order is a JSON object")
    if order.get("payment", "prepaid") != "prepaid":
        raise OrderError("prepaid_only", "cangyun is sold prepaid only", "payment")
    if order.get("auto_renew"):
        raise OrderError(
            "auto_renewal_not_supported",
            "there is no auto-renewal; a renewal is a new order",
            "auto_renew",
        )
    quantity = order.get("quantity")
    if isinstance(quantity, bool) or not isinstance(quantity, int) or not 1 <= quantity <= 1000:
        raise OrderError("invalid_quantity", "quantity must be a whole number 1..1000", "quantity")
    edition, add_on = order.get("edition"), order.get("add_on")
    if isinstance(edition, list) or "editions" in order or (edition and add_on):
        raise OrderError(
            "one_edition_per_order",
            "an order holds exactly one edition (or one add-on); place separate orders",
            "edition",
        )
    if add_on is not None:
        return _add_on_quote(add_on, quantity, sizes)
    if not isinstance(edition, str):
        raise OrderError("missing_field", "edition is required", "edition")
    mode = order.get("billing_mode")
    if mode not in UNITS:
        raise OrderError(
            "invalid_billing_mode", "billing_mode must be flow, item or period", "billing_mode"
        )
    area = order.get("business_area_m2")
    area_m2 = None
    if area is not None:
        if isinstance(area, bool) or not isinstance(area, int | float | str):
            raise OrderError(
                "invalid_field", "business_area_m2 must be a number", "business_area_m2"
            )
        try:
            area_m2 = Decimal(str(area))
        except ArithmeticError as exc:
            raise OrderError(
                "invalid_field", "business_area_m2 must be a number", "business_area_m2"
            ) from exc
        if not area_m2.is_finite() or area_m2 > 1_000_000:
            raise OrderError(
                "invalid_field", "business_area_m2 is out of range", "business_area_m2"
            )
    price = price_for(edition, mode, area_m2)
    return Quote(
        edition,
        None,
        mode,
        price.unit,
        quantity,
        price.price_yuan,
        price.price_yuan * quantity,
        sizes.units_per_package(price) * quantity,
        price.area,
    )


def require_orderable(quote: Quote, features: frozenset[str], edition: str | None) -> None:
    """An add-on can only be bought by a tenant whose edition has value-added services."""
    if quote.add_on is not None and "value_added_services" not in features:
        raise Forbidden(
            "value-added services are not part of the current edition",
            code="feature_not_in_edition",
            details={"feature": "value_added_services", "edition": edition},
        )


def _add_on_quote(add_on: Any, quantity: int, sizes: PackageSizes) -> Quote:
    if add_on not in VALUE_ADDED_CODES:
        raise OrderError(
            "unknown_add_on", f"add_on must be one of {', '.join(VALUE_ADDED_CODES)}", "add_on"
        )
    if add_on not in sizes.add_on_prices:
        raise OrderError(
            "quote_required", "custom services are quoted on request, not ordered", "add_on"
        )
    unit_price = sizes.add_on_prices[add_on]
    return Quote(
        None,
        add_on,
        "period",
        "year",
        quantity,
        unit_price,
        unit_price * quantity,
        Decimal(quantity),
    )


def catalog_json(sizes: PackageSizes) -> dict[str, Any]:
    """The shape other checks read (issue 6): editions, features, value-added services."""
    editions = []
    for code in EDITION_ORDER:
        prices = [
            {
                "billing_mode": p.billing_mode,
                "price_yuan": int(p.price_yuan),
                "area": p.area,
                "unit": p.unit,
                "units_per_package": _number(sizes.units_per_package(p)),
                "mode_name": MODE_NAMES[p.billing_mode][0],
            }
            for p in PRICES
            if p.edition == code
        ]
        editions.append(
            {
                "code": code,
                "name": EDITION_NAMES[code][0],
                "name_en": EDITION_NAMES[code][1],
                "features": [f for f in FEATURE_CODES if f in EDITION_FEATURES[code]],
                "prices": prices,
            }
        )
    return {
        "editions": editions,
        "features": [{"code": c, "name": zh, "name_en": en} for c, zh, en in FEATURES],
        "value_added_services": [
            {
                "code": c,
                "name": zh,
                "name_en": en,
                "price_yuan_per_year": _number(sizes.add_on_prices[c])
                if c in sizes.add_on_prices
                else None,
            }
            for c, zh, en in VALUE_ADDED_SERVICES
        ],
        "area_limit_m2": int(AREA_LIMIT_M2),
        "payment": "prepaid",
        "auto_renewal": False,
        "refunds": False,
    }


def _number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def quoted_service(price_yuan: Decimal) -> Quote:
    """The order an accepted custom-service quote becomes: one piece of work, its price."""
    return Quote(None, "custom_services", QUOTED, SERVICE, 1, price_yuan, price_yuan, Decimal(1))
