"""The PDA web app in real headless Chromium at 360×640 against a real edge process."""

from __future__ import annotations

import io
import random
import ssl
import urllib.request

import orjson
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import (
    FAKE_MEDIA,
    NAME,
    OPERATOR,
    PASSWORD,
    VIEWPORT,
    chromium_path,
    login,
    shot,
    start_edge,
    wedge_scan,
)
from tests.browser.video import aim_at_barcodes, camera_picture, write_y4m
from tests.support.labels import random_spec, render, require_fonts

GS = "\x1d"
GTIN = "06901234567892"


def card_field(page, name: str):
    return page.get_by_test_id("result-card").locator(f'dd[data-field="{name}"]')


def outbox_bodies(edge) -> list[dict]:
    return [orjson.loads(item)["body"] for item in edge.outbox_items()]


def test_login_refuses_a_wrong_password_then_lets_the_operator_in(page, edge):
    page.goto(edge.url + "/")
    expect(page.get_by_test_id("login-submit")).to_have_text("登录")
    shot(page, "01-login")
    login(page, edge, password="not-the-password")
    expect(page.locator("#login-message")).to_have_text("用户名或密码错误")
    shot(page, "02-login-wrong-password")
    assert page.evaluate("window.pdaFeedback") == ["error"]
    login(page, edge)
    expect(page.locator("#menu-operator")).to_contain_text(NAME)
    expect(page.get_by_test_id("sync-status")).to_contain_text("离线")  # no sync agent here
    shot(page, "03-menu")
    # The session survives a reload: still in, no login screen.
    page.reload()
    expect(page.get_by_test_id("menu-receive")).to_be_visible()


def test_receive_by_wedge_with_group_separators(page, edge):
    login(page, edge)
    page.get_by_test_id("menu-receive").click()
    expect(page.get_by_test_id("scan-input")).to_have_attribute("inputmode", "none")
    expect(page.get_by_test_id("scan-input")).to_be_focused()
    shot(page, "04-receive-scan")
    # Variable-length lot followed by GS: without the separator the expiry would become lot.
    wedge_scan(page, f"]C101{GTIN}10W-LOT7{GS}17270131{GS}3103012500")
    expect(card_field(page, "gtin")).to_have_text(GTIN)
    expect(card_field(page, "lot")).to_have_text("W-LOT7")
    expect(card_field(page, "expiry_date")).to_have_text("2027-01-31")
    expect(page.get_by_test_id("weight-input")).to_have_value("12.5")
    page.get_by_test_id("customer-input").fill("ACME-冷链")
    page.get_by_test_id("qty-input").fill("24")
    shot(page, "05-receive-confirm")
    page.get_by_test_id("confirm").click()
    expect(page.get_by_test_id("result-card")).to_contain_text("已收货")
    shot(page, "06-receive-done")
    [movement] = edge.movements(lot="W-LOT7")
    assert movement | {"id": None, "seq": None, "occurred_at": None, "recorded_at": None} == {
        "id": None,
        "seq": None,
        "type": "receive",
        "gtin": GTIN,
        "sku": None,
        "lot": "W-LOT7",
        "expiry_date": "2027-01-31",
        "serial": None,
        "sscc": None,
        "qty": 24,
        "weight_kg": 12.5,
        "customer": "ACME-冷链",
        "location": None,
        "to_location": None,
        "operator": OPERATOR,
        "occurred_at": None,
        "recorded_at": None,
        "synced": False,
    }
    assert outbox_bodies(edge)[movement["seq"] - 1]["operator"] == OPERATOR


def test_a_scanner_sending_gs_as_ctrl_bracket_is_understood(page, edge):
    login(page, edge)
    page.get_by_test_id("menu-receive").click()
    page.get_by_test_id("scan-input").focus()
    page.keyboard.type(f"01{GTIN}10CTRL-LOT")
    page.keyboard.press("Control+BracketRight")  # how many wedges send ASCII 29
    page.keyboard.type("17280229")
    page.keyboard.press("Enter")
    expect(card_field(page, "lot")).to_have_text("CTRL-LOT")
    expect(card_field(page, "expiry_date")).to_have_text("2028-02-29")


@pytest.fixture(scope="module")
def label_video(tmp_path_factory):
    require_fonts("zh")
    spec = random_spec(random.Random(2), lang="zh", barcode_kinds=("code128",))
    image, truth = render(spec)
    folder = tmp_path_factory.mktemp("camera")
    video = write_y4m(folder / "label.y4m", camera_picture(aim_at_barcodes(image)))
    return video, truth


def test_receive_by_camera_reads_gtin_and_lot(playwright, edge, label_video):
    video, truth = label_video
    browser = playwright.chromium.launch(
        executable_path=chromium_path(),
        args=[*FAKE_MEDIA, f"--use-file-for-fake-video-capture={video}"],
    )
    try:
        page = browser.new_context(viewport=VIEWPORT, locale="zh-CN").new_page()
        login(page, edge)
        page.get_by_test_id("menu-receive").click()
        page.get_by_test_id("camera-start").click()
        expect(card_field(page, "gtin")).to_have_text(truth.fields["gtin"], timeout=30_000)
        expect(card_field(page, "lot")).to_have_text(truth.fields["lot"])
        shot(page, "07-receive-camera")
        expect(page.locator("#camera")).to_be_hidden()  # the camera stops once a code is read
        page.get_by_test_id("qty-input").fill("3")
        page.get_by_test_id("confirm").click()
        expect(page.get_by_test_id("result-card")).to_contain_text("已收货")
    finally:
        browser.close()
    [movement] = edge.movements(lot=truth.fields["lot"])
    assert (movement["gtin"], movement["qty"], movement["operator"]) == (
        truth.fields["gtin"],
        3,
        OPERATOR,
    )
    body = outbox_bodies(edge)[movement["seq"] - 1]
    assert (body["gtin"], body["lot"]) == (truth.fields["gtin"], truth.fields["lot"])


def test_receive_by_photo_prefills_from_the_label_text_and_shows_conflicts(page, edge):
    """A label whose printed lot differs from its barcode's: the barcode wins, the
    difference is shown, and OCR fills what the barcode lacks."""
    require_fonts("zh")
    spec = random_spec(random.Random(5), lang="zh", barcode_kinds=("code128",), conflict=True)
    image, truth = render(spec)
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "JPEG", quality=90)
    login(page, edge)
    page.get_by_test_id("menu-receive").click()
    photo = {"name": "label.jpg", "mimeType": "image/jpeg", "buffer": buffer.getvalue()}
    page.get_by_test_id("photo-input").set_input_files(photo)
    expect(card_field(page, "lot")).to_have_text(truth.fields["lot"], timeout=60_000)
    card = page.get_by_test_id("result-card")
    expect(card).to_contain_text("条码与印刷不一致")
    expect(card).to_contain_text(truth.printed_lot)
    expect(card).to_contain_text(str(truth.fields["product_name"]).replace(" ", "")[:4])
    shot(page, "07b-receive-photo-conflict")


def test_nonsense_scan_is_an_error_and_records_nothing(page, edge):
    before = len(edge.movements())
    login(page, edge)
    page.get_by_test_id("menu-receive").click()
    wedge_scan(page, "hello-not-a-code")
    expect(page.locator("#flow-message")).to_contain_text("无法识别的条码")
    expect(page.get_by_test_id("confirm")).to_be_hidden()
    shot(page, "08-unknown-code")
    assert page.evaluate("window.pdaFeedback").count("error") == 1
    assert len(edge.movements()) == before


@pytest.mark.parametrize("qty", ["0", "1000000000", "2.5", "-3"])
def test_a_quantity_out_of_range_is_refused_before_sending(page, edge, qty):
    before = len(edge.movements())
    login(page, edge)
    page.get_by_test_id("menu-receive").click()
    wedge_scan(page, f"01{GTIN}10QTY-LOT")
    page.get_by_test_id("qty-input").fill(qty)
    page.get_by_test_id("confirm").click()
    expect(page.locator("#flow-message")).to_contain_text("数量必须是 1 到 1000000 之间的整数")
    if qty == "0":
        shot(page, "09-qty-zero")
    assert len(edge.movements()) == before


def test_double_tap_on_confirm_records_exactly_one_movement(page, edge):
    login(page, edge)
    page.get_by_test_id("menu-receive").click()
    wedge_scan(page, f"01{GTIN}10DOUBLE-TAP")
    page.get_by_test_id("qty-input").fill("5")
    page.get_by_test_id("confirm").dblclick()
    expect(page.get_by_test_id("result-card")).to_contain_text("已收货")
    assert len(edge.movements(lot="DOUBLE-TAP")) == 1


def test_a_30_mb_photo_is_refused_and_changes_nothing(page, edge):
    before = (len(edge.movements()), len(edge.outbox_items()))
    login(page, edge)
    page.get_by_test_id("menu-receive").click()
    photo = {"name": "huge.jpg", "mimeType": "image/jpeg", "buffer": b"\xff\xd8" + bytes(30 << 20)}
    # 30 MB cross the DevTools pipe to the page: slow on a loaded 2-core box, not refused late.
    page.get_by_test_id("photo-input").set_input_files(photo, timeout=120_000)
    expect(page.locator("#flow-message")).to_contain_text("照片太大（30 MB", timeout=30_000)
    expect(page.get_by_test_id("result-card")).to_be_hidden()
    shot(page, "10-photo-too-large")
    assert (len(edge.movements()), len(edge.outbox_items())) == before


def test_an_unreadable_photo_gets_the_edges_reason(page, edge):
    login(page, edge)
    page.get_by_test_id("menu-receive").click()
    note = {"name": "note.jpg", "mimeType": "image/jpeg", "buffer": b"this is not a photo"}
    page.get_by_test_id("photo-input").set_input_files(note)
    expect(page.locator("#flow-message")).to_contain_text("这不是照片文件")


def test_an_expired_session_keeps_the_work_in_progress(page, edge):
    login(page, edge)
    page.get_by_test_id("menu-receive").click()
    wedge_scan(page, f"01{GTIN}10AFTER-LOGIN")
    page.get_by_test_id("qty-input").fill("7")
    edge.sql("UPDATE operator_sessions SET expires_at = 0")  # the shift ended meanwhile
    page.get_by_test_id("confirm").click()
    expect(page.locator("#login-message")).to_contain_text("登录已过期")
    shot(page, "11-session-expired")
    assert edge.movements(lot="AFTER-LOGIN") == []
    page.get_by_test_id("login-password").fill(PASSWORD)
    page.get_by_test_id("login-submit").click()
    expect(card_field(page, "lot")).to_have_text("AFTER-LOGIN")
    expect(page.get_by_test_id("qty-input")).to_have_value("7")
    page.get_by_test_id("confirm").click()
    expect(page.get_by_test_id("result-card")).to_contain_text("已收货")
    assert [m["qty"] for m in edge.movements(lot="AFTER-LOGIN")] == [7]


def test_reload_keeps_the_screen_and_english_is_remembered(page, edge):
    login(page, edge)
    page.locator("#screen-menu .lang").click()
    expect(page.get_by_test_id("menu-receive")).to_contain_text("Receive")
    page.get_by_test_id("menu-receive").click()
    wedge_scan(page, f"01{GTIN}10RELOAD-LOT")
    page.get_by_test_id("qty-input").fill("9")
    page.reload()
    expect(card_field(page, "lot")).to_have_text("RELOAD-LOT")
    expect(page.get_by_test_id("qty-input")).to_have_value("9")
    expect(page.get_by_test_id("confirm")).to_have_text("Confirm")
    shot(page, "12-english-after-reload")


def test_putaway_pick_ship_lookup_and_undo(page, edge):
    login(page, edge)
    lot = "FLOW-LOT"
    page.get_by_test_id("menu-receive").click()
    wedge_scan(page, f"01{GTIN}10{lot}{GS}17200101")  # an expired lot is warned about
    expect(page.get_by_test_id("result-card")).to_contain_text("该批次已过期")
    shot(page, "13-expired-lot-warning")
    page.get_by_test_id("customer-input").fill("OWNER-A")
    page.get_by_test_id("qty-input").fill("10")
    page.get_by_test_id("confirm").click()
    expect(page.get_by_test_id("result-card")).to_contain_text("已收货")

    page.locator("#screen-flow .back").click()
    page.get_by_test_id("menu-putaway").click()
    wedge_scan(page, f"01{GTIN}10{lot}")
    expect(page.locator("#flow-step")).to_have_text("请扫描目标库位")
    wedge_scan(page, f"01{GTIN}10{lot}")  # goods where a bin is expected
    expect(page.locator("#flow-message")).to_contain_text("这是货物条码，请扫描库位码")
    wedge_scan(page, "A-01-01")
    expect(page.get_by_test_id("customer-input")).to_have_value("OWNER-A")
    page.get_by_test_id("qty-input").fill("10")
    shot(page, "14-putaway-confirm")
    page.get_by_test_id("confirm").click()
    expect(page.get_by_test_id("result-card")).to_contain_text("已上架")

    page.locator("#screen-flow .back").click()
    page.get_by_test_id("menu-pick").click()
    wedge_scan(page, f"01{GTIN}10{lot}")
    wedge_scan(page, "A-01-01")  # right behind: scans are handled in order
    expect(page.locator("#flow-step")).to_have_text("核对后确认")
    page.get_by_test_id("qty-input").fill("11")  # more than the bin holds
    page.get_by_test_id("confirm").click()
    # Worded from the refusal's details, in the operator's language, not the edge's English.
    expect(page.locator("#flow-message")).to_have_text("库存不足：A-01-01只有 10 件，需要 11 件")
    page.get_by_test_id("qty-input").fill("4")
    page.get_by_test_id("confirm").click()
    expect(page.get_by_test_id("result-card")).to_contain_text("已拣货")

    page.locator("#screen-flow .back").click()
    page.get_by_test_id("menu-ship").click()
    wedge_scan(page, f"01{GTIN}10{lot}")
    page.get_by_test_id("qty-input").fill("4")
    page.get_by_test_id("confirm").click()
    expect(page.get_by_test_id("result-card")).to_contain_text("已发货")

    page.locator("#screen-flow .back").click()
    page.get_by_test_id("menu-lookup").click()
    wedge_scan(page, "A-01-01")
    expect(page.get_by_test_id("result-card")).to_contain_text("合计 6 件")
    shot(page, "15-lookup-location")

    page.locator("#screen-flow .back").click()
    page.get_by_test_id("menu-history").click()
    first = page.get_by_test_id("history-list").locator("li").first
    expect(first).to_contain_text("发货")
    shot(page, "16-history")
    first.get_by_test_id("undo").click()
    first.get_by_test_id("undo").click()  # second tap confirms
    expect(page.locator("#history-message")).to_have_text("已撤销")
    shot(page, "17-history-after-undo")
    [reversal] = [m for m in edge.movements(lot=lot) if m.get("reverses")]
    [ship] = edge.movements(lot=lot, type="ship")
    assert (reversal["reverses"], reversal["type"], reversal["qty"]) == (ship["id"], "adjust", 4)
    assert reversal["operator"] == OPERATOR
    stock = edge.api("GET", "/api/v1/stock", params={"lot": lot}).json()["items"]
    assert sorted((s["location"] or "", s["qty"]) for s in stock) == [
        ("", 4),  # shipped goods come back onto the dock
        ("A-01-01", 6),
    ]


def test_the_edge_serves_https_with_a_certificate_from_its_own_ca(edge):
    ca = edge.settings.edge.data_dir / "tls" / "ca.crt"
    context = ssl.create_default_context(cafile=str(ca))
    with urllib.request.urlopen(edge.https_url + "/pda/", context=context, timeout=10) as reply:
        assert reply.status == 200 and b'data-testid="login-user"' in reply.read()
    der = urllib.request.urlopen(edge.url + "/pda/ca.crt", timeout=10).read()
    assert der[:1] == b"\x30"  # DER, the form Android installs


def test_over_https_the_page_is_a_secure_context_and_the_cookie_is_secure(browser, edge):
    # This Chromium does not know the box's CA; a PDA that installed it needs no such flag.
    context = browser.new_context(viewport=VIEWPORT, ignore_https_errors=True)
    try:
        page = context.new_page()
        page.goto(edge.https_url + "/")
        assert page.evaluate("window.isSecureContext && !!navigator.mediaDevices")
        page.get_by_test_id("login-user").fill(OPERATOR)
        page.get_by_test_id("login-password").fill(PASSWORD)
        page.get_by_test_id("login-submit").click()
        expect(page.get_by_test_id("menu-receive")).to_be_visible()
        [cookie] = context.cookies()
        assert (cookie["secure"], cookie["httpOnly"], cookie["sameSite"]) == (True, True, "Strict")
    finally:
        context.close()


def test_licence_and_disk_failures_are_told_in_the_operators_words(page, tmp_path):
    troubled = start_edge(tmp_path, env={"CANGYUN_EDGE_MIN_FREE_DISK_MB": str(1 << 40)})
    try:
        login(page, troubled)
        page.get_by_test_id("menu-ship").click()
        wedge_scan(page, f"01{GTIN}10DISK-LOT")
        page.get_by_test_id("qty-input").fill("1")
        page.get_by_test_id("confirm").click()
        expect(page.locator("#flow-message")).to_contain_text("磁盘已满")
        shot(page, "18-disk-full")
        # A licence token that does not verify: receiving stops, the status bar says why.
        troubled.sql(
            "INSERT INTO licence (id, token, serial, payload, issued_at, installed_at)"
            " VALUES (1, 'forged', 'L-1', '{}', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')"
        )
        page.locator("#screen-flow .back").click()
        page.get_by_test_id("menu-receive").click()
        wedge_scan(page, f"01{GTIN}10LIC-LOT")
        page.get_by_test_id("confirm").click()
        expect(page.locator("#flow-message")).to_contain_text("许可证无效")
        status = page.get_by_test_id("sync-status")
        expect(status).to_contain_text("许可证：无效", timeout=15_000)
        shot(page, "19-licence-invalid")
        assert troubled.movements() == []
    finally:
        troubled.process.stop()


def test_logout_ends_the_session(page, edge):
    login(page, edge)
    page.get_by_test_id("logout").click()
    expect(page.get_by_test_id("login-user")).to_have_value(OPERATOR)
    page.reload()
    expect(page.get_by_test_id("login-password")).to_be_visible()
