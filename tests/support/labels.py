"""Synthetic warehouse labels with ground truth, for tests and benchmarks of the scanning engine.

Labels are drawn with Pillow on white, with real symbols from zxing-cpp's writer, in Chinese or
English, several fonts and three layouts. Every label comes with a ``LabelTruth``: the fields a
perfect reader would extract and the exact plain-text content of every barcode. Nothing is
downloaded: fonts are the system's (see ``require_fonts``).

GS1 rules followed so the symbols look like real ones: a logistic unit (with an SSCC and a count)
carries its GTIN in AI (02) together with the count in AI (37) and the SSCC in its own GS1-128;
a trade item uses AI (01) and carries no count. Net weight is AI (3103), kg with 3 decimals, or
(3102)/(3101) above 999.999 kg where six digits no longer hold three decimals.
"""

from __future__ import annotations

import calendar
import datetime as dt
import functools
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import zxingcpp
from PIL import Image, ImageDraw, ImageFont

from cangyun.identifiers import gs1_check_digit
from tests.support.camera import photograph

GS = "\x1d"
FORMATS = ("code128", "datamatrix", "qrcode", "ean13", "itf", "pdf417", "databarexpanded")
LAYOUTS = ("two_column", "boxed", "stacked")
LANGS = ("zh", "en")
WEIGHT_UNITS = {"zh": ("kg", "g", "t", "斤", "公斤"), "en": ("kg", "g", "t")}
KG_PER_UNIT = {"kg": 1.0, "公斤": 1.0, "g": 0.001, "t": 1000.0, "斤": 0.5}
# Each set holds a GS1 carrier so every label has machine-readable lot and dates.
BARCODE_SETS: tuple[tuple[str, ...], ...] = (
    ("code128",),
    ("datamatrix",),
    ("qrcode",),
    ("ean13", "code128"),
    ("itf", "datamatrix"),
    ("databarexpanded",),
    ("pdf417", "code128"),
    ("code128", "datamatrix"),
)
SHELF_LIVES = (3, 6, 9, 12, 18, 24, 36)
LAST_DATE = dt.date(2028, 12, 31)

FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts", "~/.local/share/fonts", "~/.fonts")
FONT_FILES = {
    "zh": (
        "NotoSansCJK-Regular.ttc",
        "NotoSansCJK-Bold.ttc",
        "NotoSerifCJK-Regular.ttc",
        "wqy-zenhei.ttc",
        "wqy-microhei.ttc",
        "NotoSansCJKsc-Regular.otf",
        "NotoSansSC-Regular.otf",
    ),
    "en": (
        "DejaVuSans.ttf",
        "DejaVuSans-Bold.ttf",
        "DejaVuSerif.ttf",
        "DejaVuSansCondensed.ttf",
        "LiberationSans-Regular.ttf",
    ),
}
FONT_PACKAGES = {
    "zh": "fonts-noto-cjk, fonts-wqy-zenhei, fonts-wqy-microhei",
    "en": "fonts-dejavu-core",
}

CAPTIONS = {
    "zh": {
        "product_name": ("品名", "产品名称"),
        "gtin": ("商品条码", "GTIN"),
        "lot": ("批号", "批次", "生产批号"),
        "production_date": ("生产日期",),
        "expiry_date": ("有效期至", "有效期"),
        "shelf_life": ("保质期",),
        "net_weight_kg": ("净重",),
        "quantity": ("数量",),
        "owner": ("货主", "收货单位"),
    },
    "en": {
        "product_name": ("Product", "Description"),
        "gtin": ("GTIN",),
        "lot": ("LOT", "Batch"),
        "production_date": ("MFG DATE", "PROD DATE"),
        "expiry_date": ("EXP", "Use by"),
        "shelf_life": ("Shelf life",),
        "net_weight_kg": ("N.W.", "Net Wt"),
        "quantity": ("QTY",),
        "owner": ("Consignee", "Owner"),
    },
}
DATE_STYLES = {"zh": ("iso", "dot", "slash", "cn"), "en": ("iso", "dot", "slash", "dmy_mon")}
PRODUCTS = {
    "zh": (
        "冷冻带鱼段",
        "速冻水饺（猪肉白菜）",
        "进口牛肉块",
        "纯牛奶 250ml×24",
        "冷冻鸡翅中",
        "速冻汤圆（黑芝麻）",
        "东北长粒香大米",
        "食用植物调和油 5L×4",
        "冷冻虾仁",
        "冻猪五花肉",
        "原味酸奶 200g×12",
        "饮用天然矿泉水 550ml×24",
        "冷冻三文鱼柳",
        "鸡蛋挂面 1kg×10",
    ),
    "en": (
        "Frozen Hairtail Steaks",
        "Frozen Dumplings (Pork & Cabbage)",
        "Imported Beef Chunks",
        "UHT Whole Milk 250ml x 24",
        "Frozen Chicken Wings",
        "Atlantic Salmon Fillets",
        "Long Grain Rice",
        "Frozen Peeled Shrimp",
        "Sunflower Oil 5L x 4",
        "Greek Yogurt 200g x 12",
        "Mozzarella Cheese Blocks",
    ),
}
OWNERS = {
    "zh": (
        "上海冷链物流有限公司",
        "广州顺达食品有限公司",
        "杭州鲜丰供应链管理有限公司",
        "成都蓉城冷藏仓储有限公司",
        "青岛海港进出口贸易有限公司",
        "武汉九州商贸有限公司",
    ),
    "en": (
        "Acme Foods Ltd",
        "Northwind Trading Co.",
        "Blue Harbor Seafood Inc.",
        "Green Valley Dairy Ltd",
        "Pacific Cold Chain Logistics",
        "Evergreen Provisions LLC",
    ),
}
QUANTITY_UNITS = {"zh": ("箱", "件", "袋", "盒", ""), "en": ("CTNS", "PCS", "BAGS", "CASES", "")}
TITLES = {  # (item labels, logistic-unit labels)
    "zh": (("产品标识卡", "产品标签", "外箱标签"), ("货物标签", "入库标签", "物流标签")),
    "en": (("PRODUCT LABEL", "CASE LABEL"), ("PALLET LABEL", "SHIPPING LABEL")),
}
NOTES = {
    "zh": ("贮存条件：-18℃以下冷冻保存", "常温保存，避免阳光直射", "0-4℃冷藏", "小心轻放 请勿倒置"),
    "en": ("Keep frozen at -18°C or below", "Store in a cool dry place", "Keep refrigerated 0-4°C"),
}
MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


@dataclass(frozen=True)
class ExpectedBarcode:
    format: str  # lowercase: code128, datamatrix, qrcode, ean13, itf, pdf417, databarexpanded
    content: str  # plain-text decoder output, GS1 separators as U+001D, no symbology prefix
    gs1: bool


@dataclass(frozen=True)
class LabelTruth:
    fields: dict[str, object]
    barcodes: tuple[ExpectedBarcode, ...]
    printed_lot: str | None = None  # set only for conflict labels: the lot printed as text


@dataclass
class LabelSpec:
    gtin: str  # GTIN-14
    lot: str  # the lot in the barcodes (and printed, unless conflict)
    production_date: dt.date
    product_name: str
    lang: str = "zh"
    layout: str = "two_column"
    font: str = ""  # empty: the first available font for lang
    sscc: str | None = None
    expiry_date: dt.date | None = None
    shelf_life_months: int | None = None
    expiry_as_duration: bool = False
    net_weight_kg: float | None = None
    weight_unit: str = "kg"
    quantity: int | None = None
    quantity_unit: str = ""
    owner: str | None = None
    barcode_kinds: tuple[str, ...] = ("code128",)
    conflict: bool = False
    captions: dict[str, str] = field(default_factory=dict)  # field name -> printed key
    date_style: str = "iso"
    style_seed: int = 0  # cosmetic choices: title, colons, spacing, footer note


# ---------------------------------------------------------------- fonts


def available_fonts(lang: str) -> list[str]:
    """Installed fonts usable for ``lang``, found by file name (no fontconfig needed)."""
    return list(_find_fonts(lang))


@functools.lru_cache(maxsize=4)
def _find_fonts(lang: str) -> tuple[str, ...]:
    found: dict[str, str] = {}
    for directory in FONT_DIRS:
        root = Path(directory).expanduser()
        if not root.is_dir():
            continue
        for name in FONT_FILES[lang]:
            if name not in found:
                hits = sorted(root.rglob(name))
                if hits:
                    found[name] = str(hits[0])
    return tuple(found[name] for name in FONT_FILES[lang] if name in found)


def require_fonts(lang: str | None = None) -> list[str]:
    """The fonts for ``lang`` (or for both languages); a missing font fails the calling test
    (``tests.support.requires``)."""
    from tests.support.requires import need

    fonts: list[str] = []
    for one in (lang,) if lang else LANGS:
        found = available_fonts(one)
        need("fonts", bool(found), f"{FONT_PACKAGES[one]}: looked for {', '.join(FONT_FILES[one])}")
        fonts += found
    return fonts


@functools.lru_cache(maxsize=16)
def _face_index(path: str) -> int:
    # Noto CJK collections start with the Japanese face; labels here are Simplified Chinese.
    if not path.lower().endswith((".ttc", ".otc")):
        return 0
    for index in range(16):
        try:
            family = ImageFont.truetype(path, 12, index=index).getname()[0] or ""
        except OSError:
            break
        if family.split()[-1:] == ["SC"]:
            return index
    return 0


@functools.lru_cache(maxsize=128)
def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size, index=_face_index(path))


# ---------------------------------------------------------------- values


def add_months(day: dt.date, months: int) -> dt.date:
    """``day`` plus ``months`` calendar months, same day of month, clamped to the month's end."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _with_check(payload: str) -> str:
    return payload + str(gs1_check_digit(payload))


def _digits(rng: random.Random, count: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(count))


def _draw_gtin(rng: random.Random, indicator: int) -> str:
    # Chinese GS1 prefixes are 690-699; indicator 0 is a GTIN-13 padded to 14 digits.
    base = f"69{rng.randint(0, 9)}" + _digits(rng, 9)
    return _with_check(f"{indicator}{base}")


def _draw_sscc(rng: random.Random) -> str:
    return _with_check(f"{rng.randint(0, 9)}69{rng.randint(0, 9)}" + _digits(rng, 13))


def _draw_lot(rng: random.Random, made: dt.date) -> str:
    letters = "ABCDEFGHJKLMNPRSTUVWXYZ"
    pattern = rng.randrange(5)
    if pattern == 0:
        return f"B{made:%y%m}-{rng.randint(1, 30):02d}"
    if pattern == 1:
        return f"L{made:%y%m%d}{rng.choice(letters)}"
    if pattern == 2:
        return f"{made:%Y%m%d}{rng.randint(1, 9):02d}"
    if pattern == 3:
        return f"{rng.choice(letters)}{rng.randint(10000, 99999)}"
    return f"{made:%y}{made.timetuple().tm_yday:03d}-{rng.randint(1, 6)}"


def _draw_weight(rng: random.Random, unit: str) -> float:
    """Net weight in kg that prints exactly in ``unit`` with at most three decimals."""
    if unit == "t":
        return float(rng.randrange(250, 1501, 5))
    if unit == "g":
        return rng.randrange(250, 5001, 5) / 1000
    if unit == "斤":
        return rng.randrange(1, 101) / 2
    kind = rng.randrange(3)
    if kind == 0:
        return rng.randrange(250, 5001, 5) / 1000
    if kind == 1:
        return rng.choice(
            (5.0, 10.0, 12.5, 15.0, 20.0, 22.68, 25.0, rng.randrange(5000, 50001) / 1000)
        )
    return rng.randrange(200, 3001) / 2


def random_spec(
    rng: random.Random,
    lang: str | None = None,
    *,
    layout: str | None = None,
    font: str | None = None,
    barcode_kinds: tuple[str, ...] | None = None,
    weight_unit: str | None = None,
    expiry_as_duration: bool | None = None,
    conflict: bool = False,
) -> LabelSpec:
    """A realistic label; the keyword arguments pin a dimension instead of drawing it."""
    lang = lang or rng.choice(LANGS)
    layout = layout or rng.choice(LAYOUTS)
    fonts = available_fonts(lang)
    font = font or (rng.choice(fonts) if fonts else "")
    kinds = barcode_kinds or rng.choice(BARCODE_SETS)
    unit = weight_unit or rng.choice(WEIGHT_UNITS[lang])
    duration = rng.random() < 0.3 if expiry_as_duration is None else expiry_as_duration

    # EAN-13 marks a consumer unit (indicator 0); ITF-14 an outer case (indicator 1-8).
    if "ean13" in kinds:
        indicator = 0
    elif "itf" in kinds:
        indicator = rng.randint(1, 8)
    else:
        indicator = rng.choice((0, 0, 1, 2, 3))
    consumer_unit = "ean13" in kinds
    sscc = _draw_sscc(rng) if not consumer_unit and rng.random() < 0.5 else None
    quantity = None
    if sscc or rng.random() < 0.6:
        quantity = rng.choice((rng.randint(1, 60), rng.randint(1, 2000)))

    made = dt.date(2024, 1, 1) + dt.timedelta(days=rng.randrange(3 * 365))
    # Keep every date inside 2024-2028, the range the engine is tested on.
    months = rng.choice([m for m in SHELF_LIVES if add_months(made, m) <= LAST_DATE])
    expiry = add_months(made, months)
    if not duration and rng.random() < 0.3:
        expiry -= dt.timedelta(days=1)  # "有效期至" is often the day before the anniversary

    captions = {name: rng.choice(keys) for name, keys in CAPTIONS[lang].items()}
    return LabelSpec(
        gtin=_draw_gtin(rng, indicator),
        lot=_draw_lot(rng, made),
        production_date=made,
        product_name=rng.choice(PRODUCTS[lang]),
        lang=lang,
        layout=layout,
        font=font,
        sscc=sscc,
        expiry_date=expiry,
        shelf_life_months=months,
        expiry_as_duration=duration,
        # A pinned unit must show up, so its label always carries a weight.
        net_weight_kg=_draw_weight(rng, unit) if weight_unit or rng.random() < 0.9 else None,
        weight_unit=unit,
        quantity=quantity,
        quantity_unit=rng.choice(QUANTITY_UNITS[lang]),
        owner=rng.choice(OWNERS[lang]) if rng.random() < 0.85 else None,
        barcode_kinds=tuple(kinds),
        conflict=conflict,
        captions=captions,
        date_style=rng.choice(DATE_STYLES[lang]),
        style_seed=rng.getrandbits(32),
    )


def expiry_of(spec: LabelSpec) -> dt.date | None:
    """The expiry date the label means, whether printed as a date or as a shelf life."""
    if spec.expiry_as_duration:
        if spec.shelf_life_months is None:
            raise ValueError("expiry_as_duration needs shelf_life_months")
        return add_months(spec.production_date, spec.shelf_life_months)
    return spec.expiry_date


def conflicting_lot(lot: str) -> str:
    """A plausible misprint of ``lot``: its last digit changed (or a letter appended)."""
    for i in range(len(lot) - 1, -1, -1):
        if lot[i].isdigit():
            return lot[:i] + str((int(lot[i]) + 1) % 10) + lot[i + 1 :]
    return lot + "X"


# ---------------------------------------------------------------- GS1 content


def _weight_element(kg: float) -> tuple[str, str]:
    for decimals in (3, 2, 1, 0):
        scaled = round(kg * 10**decimals)
        if scaled < 10**6 and abs(scaled / 10**decimals - kg) < 1e-9:
            return f"310{decimals}", f"{scaled:06d}"
    raise ValueError(f"net weight {kg} kg does not fit AI 310n")


def _elements(spec: LabelSpec, expiry: dt.date | None) -> dict[str, str]:
    """The label's GS1 element strings, AI -> value, in a neutral order."""
    logistic = spec.sscc is not None and spec.quantity is not None
    out = {"02" if logistic else "01": spec.gtin, "10": spec.lot}
    out["11"] = f"{spec.production_date:%y%m%d}"
    if expiry is not None:
        out["17"] = f"{expiry:%y%m%d}"
    if spec.net_weight_kg is not None:
        ai, value = _weight_element(spec.net_weight_kg)
        out[ai] = value
    if logistic:
        out["37"] = str(spec.quantity)
    return out


VARIABLE_AIS = {"10", "37"}


def _gs1(pairs: list[tuple[str, str]]) -> tuple[str, str]:
    """(bracketed input for the writer, plain text a decoder returns)."""
    human = "".join(f"({ai}){value}" for ai, value in pairs)
    plain = ""
    for i, (ai, value) in enumerate(pairs):
        plain += ai + value
        if ai in VARIABLE_AIS and i < len(pairs) - 1:
            plain += GS
    return human, plain


def _ordered(elements: dict[str, str], order: tuple[str, ...]) -> list[tuple[str, str]]:
    return [(ai, elements[ai]) for ai in order if ai in elements]


@dataclass(frozen=True)
class _Symbol:
    kind: str
    writer_input: str
    truth: ExpectedBarcode
    hri: str  # human-readable line printed under linear symbols ("" for none)


def _symbols(spec: LabelSpec, expiry: dt.date | None) -> list[_Symbol]:
    """Every symbol of the label, in drawing order within its group (2D, then linear)."""
    els = _elements(spec, expiry)
    gtin_ai = "02" if "02" in els else "01"
    weight_ai = next((ai for ai in els if ai.startswith("310")), "3103")
    out: list[_Symbol] = []

    def gs1(kind: str, pairs: list[tuple[str, str]]) -> None:
        human, plain = _gs1(pairs)
        hri = human if kind in ("code128", "databarexpanded") else ""
        out.append(_Symbol(kind, human, ExpectedBarcode(kind, plain, True), hri))

    for kind in spec.barcode_kinds:
        if kind in ("datamatrix", "qrcode"):
            # 2D printers often put the lot right after the GTIN: exercises the separator.
            order = (gtin_ai, "10", "11", "17", weight_ai, "37")
            gs1(kind, _ordered(els, order))
        elif kind == "code128":
            # Split like a GS1 logistic label: identification first, then dates and weight.
            gs1(kind, _ordered(els, (gtin_ai, "10", "37")))
            rest = _ordered(els, ("11", "17", weight_ai))
            if rest:
                gs1(kind, rest)
        elif kind == "databarexpanded":
            gs1(kind, _ordered(els, (gtin_ai, "17", weight_ai, "37", "10")))
        elif kind == "ean13":
            gtin13 = spec.gtin[1:]
            hri = f"{gtin13[0]} {gtin13[1:7]} {gtin13[7:]}"
            out.append(_Symbol(kind, gtin13[:12], ExpectedBarcode(kind, gtin13, False), hri))
        elif kind == "itf":
            g = spec.gtin
            hri = f"{g[0]} {g[1:3]} {g[3:8]} {g[8:13]} {g[13]}"
            out.append(_Symbol(kind, g, ExpectedBarcode(kind, g, False), hri))
        elif kind == "pdf417":
            # Some WMS printers encode the bracketed GS1 text in a plain (non-GS1) PDF417.
            human, _ = _gs1(_ordered(els, (gtin_ai, "10", "11", "17", weight_ai, "37")))
            out.append(_Symbol(kind, human, ExpectedBarcode(kind, human, False), ""))
        else:
            raise ValueError(f"unknown barcode kind {kind!r}")
    if spec.sscc:
        human, plain = _gs1([("00", spec.sscc)])
        out.append(_Symbol("code128", human, ExpectedBarcode("code128", plain, True), human))
    return out


_ZX_FORMATS = {
    "code128": zxingcpp.BarcodeFormat.Code128,
    "datamatrix": zxingcpp.BarcodeFormat.DataMatrix,
    "qrcode": zxingcpp.BarcodeFormat.QRCode,
    "ean13": zxingcpp.BarcodeFormat.EAN13,
    "itf": zxingcpp.BarcodeFormat.ITF,
    "pdf417": zxingcpp.BarcodeFormat.PDF417,
    "databarexpanded": zxingcpp.BarcodeFormat.DataBarExp,
}
LINEAR = {"code128", "ean13", "itf", "databarexpanded"}
# Bar height over symbol width, as printed: EAN-13 is nearly square, DataBar Expanded slim.
BAR_ASPECT = {
    "code128": (0.2, 0.3),
    "ean13": (0.55, 0.7),
    "itf": (0.25, 0.35),
    "databarexpanded": (0.1, 0.15),
}


def _modules(symbol: _Symbol) -> np.ndarray:
    """The symbol at one pixel per module, quiet zones included (uint8, 0 = bar)."""
    options: dict[str, bool] = {}
    if symbol.truth.gs1:
        options["gs1"] = True
    if symbol.kind == "datamatrix":
        options["force_square"] = True  # the writer may pick a rectangle for long content
    barcode = zxingcpp.create_barcode(symbol.writer_input, _ZX_FORMATS[symbol.kind], **options)
    return np.asarray(barcode.to_image(scale=1)).copy()


# ---------------------------------------------------------------- text formatting


def format_date(day: dt.date, style: str) -> str:
    if style == "dot":
        return f"{day:%Y.%m.%d}"
    if style == "slash":
        return f"{day:%Y/%m/%d}"
    if style == "cn":
        return f"{day.year}年{day.month:02d}月{day.day:02d}日"
    if style == "dmy_mon":
        return f"{day.day:02d} {MONTHS[day.month - 1]} {day.year}"
    return day.isoformat()


def _number(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".")


def _rows(spec: LabelSpec, style: random.Random, expiry: dt.date | None) -> list[tuple[str, str]]:
    """(key, value) pairs in printing order."""
    caps = {**{name: keys[0] for name, keys in CAPTIONS[spec.lang].items()}, **spec.captions}
    zh = spec.lang == "zh"
    gap = "" if zh and style.random() < 0.6 else " "
    rows = [(caps["product_name"], spec.product_name)]
    # Chinese labels usually show the 13-digit form of a GTIN-13.
    gtin = spec.gtin[1:] if zh and spec.gtin[0] == "0" else spec.gtin
    rows.append((caps["gtin"], gtin))
    lot = conflicting_lot(spec.lot) if spec.conflict else spec.lot
    rows.append((caps["lot"], lot))
    rows.append((caps["production_date"], format_date(spec.production_date, spec.date_style)))
    if spec.expiry_as_duration:
        months = spec.shelf_life_months
        rows.append((caps["shelf_life"], f"{months}个月" if zh else f"{months} months"))
    elif expiry is not None:
        rows.append((caps["expiry_date"], format_date(expiry, spec.date_style)))
    if spec.net_weight_kg is not None:
        amount = _number(spec.net_weight_kg / KG_PER_UNIT[spec.weight_unit])
        unit = spec.weight_unit if zh or style.random() < 0.5 else spec.weight_unit.upper()
        rows.append((caps["net_weight_kg"], f"{amount}{gap}{unit}"))
    if spec.quantity is not None:
        rows.append((caps["quantity"], f"{spec.quantity}{gap}{spec.quantity_unit}".strip()))
    if spec.owner:
        rows.append((caps["owner"], spec.owner))
    return rows


def _wrap(text: str, font: ImageFont.FreeTypeFont, width: float) -> list[str]:
    """Lines of ``text`` no wider than ``width``: at spaces when possible, else anywhere
    (Chinese has no spaces and breaks between any two characters)."""
    lines: list[str] = []
    line = ""
    for word in _tokens(text):
        candidate = line + word
        if line and font.getlength(candidate.rstrip()) > width:
            lines.append(line.rstrip())
            line = word.lstrip()
        else:
            line = candidate
        while font.getlength(line.rstrip()) > width and len(line) > 1:
            cut = len(line) - 1
            while cut > 1 and font.getlength(line[:cut]) > width:
                cut -= 1
            lines.append(line[:cut])
            line = line[cut:]
    if line.strip():
        lines.append(line.rstrip())
    return lines or [""]


def _tokens(text: str) -> list[str]:
    out: list[str] = []
    word = ""
    for char in text:
        if ord(char) > 0x2E80:  # CJK: every character is a break opportunity
            if word:
                out.append(word)
                word = ""
            out.append(char)
        else:
            word += char
            if char == " ":
                out.append(word)
                word = ""
    if word:
        out.append(word)
    return out


# ---------------------------------------------------------------- drawing


class _Painter:
    """Draws onto a tall white canvas that is cropped to the used height at the end."""

    def __init__(self, spec: LabelSpec, width: int, style: random.Random) -> None:
        self.width = width
        self.image = Image.new("L", (width, width * 4), 255)
        self.draw = ImageDraw.Draw(self.image)
        self.font_path = spec.font or _first_font(spec.lang)
        self.size = round(width * style.uniform(0.028, 0.034))
        self.margin = round(width * 0.045)
        self.y = self.margin

    def font(self, scale: float = 1.0) -> ImageFont.FreeTypeFont:
        return _font(self.font_path, max(10, round(self.size * scale)))

    @staticmethod
    def line_height(font: ImageFont.FreeTypeFont) -> int:
        ascent, descent = font.getmetrics()
        return ascent + descent

    def text(self, x: float, y: float, text: str, font: ImageFont.FreeTypeFont, bold=0) -> None:
        self.draw.text((x, y), text, fill=0, font=font, stroke_width=bold, stroke_fill=0)

    def lines(self, x: float, y: float, lines: list[str], font, bold: int = 0) -> int:
        """Draw ``lines`` from (x, y); returns the height used."""
        step = self.line_height(font)
        for i, line in enumerate(lines):
            self.text(x, y + i * step, line, font, bold)
        return step * len(lines)

    def centered(self, y: float, text: str, font, bold: int = 0, x0=None, x1=None) -> int:
        x0 = self.margin if x0 is None else x0
        x1 = self.width - self.margin if x1 is None else x1
        lines = _wrap(text, font, x1 - x0)
        step = self.line_height(font)
        for i, line in enumerate(lines):
            self.text((x0 + x1 - font.getlength(line)) / 2, y + i * step, line, font, bold)
        return step * len(lines)

    def paste(self, array: np.ndarray, x: int, y: int) -> None:
        self.image.paste(Image.fromarray(array, "L"), (int(x), int(y)))

    def finish(self) -> Image.Image:
        return self.image.crop((0, 0, self.width, self.y + self.margin)).convert("RGB")


@functools.lru_cache(maxsize=2)
def _first_font(lang: str) -> str:
    fonts = available_fonts(lang)
    if not fonts:
        raise RuntimeError(f"no {lang} font installed (Debian: {FONT_PACKAGES[lang]})")
    return fonts[0]


def _two_column(p: _Painter, rows, x0: int, x1: int, colon: str) -> int:
    font = p.font()
    key_width = max(font.getlength(key + colon) for key, _ in rows) + p.size * 0.6
    y = p.y
    for key, value in rows:
        lines = _wrap(value, font, x1 - x0 - key_width)
        p.text(x0, y, key + colon, font)
        y += p.lines(x0 + key_width, y, lines, font) + round(p.size * 0.45)
    return y - p.y


def _boxed(p: _Painter, rows, x0: int, x1: int, colon: str) -> int:
    font = p.font()
    pad = round(p.size * 0.35)
    key_width = max(font.getlength(key) for key, _ in rows) + 2 * pad
    thin, thick = max(2, p.width // 700), max(3, p.width // 400)
    y = p.y
    for key, value in rows:
        lines = _wrap(value, font, x1 - x0 - key_width - 2 * pad)
        height = p.line_height(font) * len(lines) + 2 * pad
        p.text(x0 + pad, y + pad, key, font)
        p.lines(x0 + key_width + pad, y + pad, lines, font)
        p.draw.line((x0, y + height, x1, y + height), fill=0, width=thin)
        p.draw.line((x0 + key_width, y, x0 + key_width, y + height), fill=0, width=thin)
        y += height
    p.draw.rectangle((x0, p.y, x1, y), outline=0, width=thick)
    return y - p.y + pad


def _stacked(p: _Painter, rows, x0: int, x1: int, colon: str) -> int:
    """Small key above a larger value; long values span the width, short ones pair up."""
    key_font, value_font = p.font(0.72), p.font(1.12)
    gap = round(p.size * 0.8)
    half = (x1 - x0 - gap) / 2
    y = p.y
    pending: list[tuple[str, str]] = []

    def cell(x: float, width: float, key: str, value: str) -> int:
        used = p.lines(x, y, [key], key_font)
        used += p.lines(x, y + used, _wrap(value, value_font, width), value_font, bold=1)
        return used

    def flush() -> int:
        if not pending:
            return 0
        heights = [cell(x0 + i * (half + gap), half, *kv) for i, kv in enumerate(pending)]
        pending.clear()
        return max(heights)

    for key, value in rows:
        if value_font.getlength(value) > half:
            if pending:
                y += flush() + round(p.size * 0.5)
            y += cell(x0, x1 - x0, key, value) + round(p.size * 0.5)
        else:
            pending.append((key, value))
            if len(pending) == 2:
                y += flush() + round(p.size * 0.5)
    if pending:
        y += flush() + round(p.size * 0.5)
    return y - p.y


_LAYOUTS = {"two_column": _two_column, "boxed": _boxed, "stacked": _stacked}


def _draw_2d(p: _Painter, symbol: _Symbol, x1: int, y: int, target: int) -> tuple[int, int]:
    modules = _modules(symbol)
    scale = max(3, target // max(modules.shape))
    big = np.kron(modules, np.ones((scale, scale), dtype=np.uint8))
    p.paste(big, x1 - big.shape[1], y)
    return big.shape[1], big.shape[0]


def _draw_linear(p: _Painter, symbol: _Symbol, style: random.Random) -> None:
    modules = _modules(symbol)
    if symbol.kind in LINEAR:
        # Linear symbols are uniform vertically: one row, stretched to a realistic bar height.
        row = modules[modules.shape[0] // 2]
        avail = p.width - 2 * p.margin
        scale = max(1, min(7, avail // row.size))
        low, high = BAR_ASPECT[symbol.kind]
        bar_height = min(round(row.size * scale * style.uniform(low, high)), p.width // 6)
        big = np.tile(np.repeat(row, scale), (bar_height, 1))
    else:  # PDF417: keep its own row height
        scale = max(2, min(6, round(p.width * 0.65) // modules.shape[1]))
        big = np.kron(modules, np.ones((scale, scale), dtype=np.uint8))
    x = (p.width - big.shape[1]) // 2
    bearer = 3 * scale if symbol.kind == "itf" else 0
    p.y += bearer
    p.paste(big, x, p.y)
    if bearer:  # bearer bars as on corrugated cases, outside the quiet zones
        p.draw.rectangle(
            (
                x - bearer,
                p.y - bearer,
                x + big.shape[1] + bearer - 1,
                p.y + big.shape[0] + bearer - 1,
            ),
            outline=0,
            width=bearer,
        )
        p.y += bearer
    p.y += big.shape[0] + round(p.size * 0.15)
    if symbol.hri:
        p.y += p.centered(p.y, symbol.hri, p.font(0.62))
    p.y += round(p.size * 0.7)


def render(spec: LabelSpec, width: int = 1600) -> tuple[Image.Image, LabelTruth]:
    """Draw ``spec`` as a clean label image; returns it with its ground truth."""
    style = random.Random(spec.style_seed)
    expiry = expiry_of(spec)
    p = _Painter(spec, width, style)
    colon = (
        ("：" if style.random() < 0.6 else ":")
        if spec.lang == "zh"
        else (":" if style.random() < 0.7 else "")
    )

    title = style.choice(TITLES[spec.lang][spec.sscc is not None])
    p.y += p.centered(p.y, title, p.font(1.35), bold=1)
    p.y += round(p.size * 0.6)

    symbols = _symbols(spec, expiry)
    matrix = [s for s in symbols if s.kind in ("datamatrix", "qrcode")]
    linear = [s for s in symbols if s not in matrix]
    x0, x1 = p.margin, width - p.margin
    text_x1 = x1
    matrix_height = 0
    if matrix:
        target = round(width * style.uniform(0.19, 0.24))
        side, matrix_height = _draw_2d(p, matrix[0], x1, p.y, target)
        text_x1 = x1 - side - round(p.size * 1.0)
    text_height = _LAYOUTS[spec.layout](p, _rows(spec, style, expiry), x0, text_x1, colon)
    p.y += max(text_height, matrix_height) + round(p.size * 0.8)

    for symbol in linear:
        _draw_linear(p, symbol, style)
    notes = NOTES[spec.lang]
    p.y += p.centered(p.y, notes[style.randrange(len(notes))], p.font(0.7))

    image = p.finish()
    return image, _truth(spec, expiry, symbols)


def _truth(spec: LabelSpec, expiry: dt.date | None, symbols: list[_Symbol]) -> LabelTruth:
    fields: dict[str, object] = {"gtin": spec.gtin}
    if spec.sscc:
        fields["sscc"] = spec.sscc
    fields["lot"] = spec.lot
    fields["production_date"] = spec.production_date.isoformat()
    if expiry is not None:
        fields["expiry_date"] = expiry.isoformat()
    if spec.net_weight_kg is not None:
        fields["net_weight_kg"] = round(spec.net_weight_kg, 3)
    if spec.quantity is not None:
        fields["quantity"] = spec.quantity
    fields["product_name"] = spec.product_name
    if spec.owner:
        fields["owner"] = spec.owner
    order = [s for s in symbols if s.kind in ("datamatrix", "qrcode")]
    order += [s for s in symbols if s not in order]
    return LabelTruth(
        fields=fields,
        barcodes=tuple(s.truth for s in order),
        printed_lot=conflicting_lot(spec.lot) if spec.conflict else None,
    )


# ---------------------------------------------------------------- sets


def _shuffled_cycle(values: tuple, count: int, rng: random.Random) -> list:
    """``count`` values cycling through ``values`` (each appears once ``count`` >= len), in a
    seeded order so the dimensions do not move in lockstep."""
    out = [values[i % len(values)] for i in range(count)]
    rng.shuffle(out)
    return out


def label_set(
    n: int,
    seed: int,
    *,
    lang: str | None = None,
    distort: bool = True,
    severity: str = "normal",
    conflicts: bool = False,
    width: int = 1600,
) -> list[tuple[Image.Image, LabelTruth, LabelSpec]]:
    """``n`` labels, deterministic for ``seed``. Languages alternate (unless ``lang``); per
    language, layouts, fonts, barcode sets, weight units and the shelf-life variant each cycle
    through all their values, so ~40 labels cover every value in both languages. With
    ``distort`` the images are handheld photos (``camera.photograph``); with ``conflicts``
    every 8th label prints a lot that differs from its barcodes."""
    langs = [lang] * n if lang else [LANGS[i % 2] for i in range(n)]
    plan: dict[str, dict[str, list]] = {}
    for one in set(langs):
        count = langs.count(one)
        rng = random.Random(f"cangyun-label-plan:{seed}:{one}")
        plan[one] = {
            "layout": _shuffled_cycle(LAYOUTS, count, rng),
            "font": _shuffled_cycle(tuple(available_fonts(one)) or ("",), count, rng),
            "barcode_kinds": _shuffled_cycle(BARCODE_SETS, count, rng),
            "weight_unit": _shuffled_cycle(WEIGHT_UNITS[one], count, rng),
            "expiry_as_duration": _shuffled_cycle((False, True), count, rng),
        }
    seen = dict.fromkeys(LANGS, 0)
    out = []
    for i, one in enumerate(langs):
        j = seen[one]
        seen[one] += 1
        choices = {name: values[j] for name, values in plan[one].items()}
        rng = random.Random(f"cangyun-label:{seed}:{i}")
        spec = random_spec(rng, one, conflict=conflicts and i % 8 == 7, **choices)
        image, truth = render(spec, width)
        if distort:
            image = photograph(image, random.Random(f"cangyun-camera:{seed}:{i}"), severity)
        out.append((image, truth, spec))
    return out
