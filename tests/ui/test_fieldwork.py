"""The check-in page on a phone in a real browser: the position comes from the browser's
geolocation (granted to the page), a photo from the file input, and the visit shows its check-in."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, FilePayload, Geolocation, Page, expect

from tests.ui.conftest import PASSWORD, Served, screenshot

#: People's Square, Shanghai, as a phone would report it
POSITION: Geolocation = {"latitude": 31.2304, "longitude": 121.4737, "accuracy": 18}


def _png(width: int = 96, height: int = 64) -> bytes:
    """A small solid-blue PNG (a real image the page can show)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\x24\x56\xd6" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


@pytest.fixture
def phone(served: Served, browser: Browser) -> Iterator[Page]:
    context = browser.new_context(
        base_url=served.base_url,
        locale="zh-CN",
        viewport={"width": 390, "height": 844},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        geolocation=POSITION,
        permissions=["geolocation"],
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.goto("/login")
    page.fill("#username", "demo.rep")
    page.fill("#password", PASSWORD)
    page.click("form.stacked button[type=submit]")
    page.wait_for_url(lambda url: "/login" not in url)
    page.goto("/language/zh_CN")
    try:
        yield page
    finally:
        context.close()


def test_a_rep_checks_in_on_a_visit_from_a_phone(phone: Page) -> None:
    phone.goto("/fieldwork")
    phone.locator("#start-visit select[name=account_id]").select_option(index=1)
    phone.locator("#start-visit button[type=submit]").click()
    phone.wait_for_url("**/check-in")

    expect(phone.locator("#latitude")).to_have_value("31.230400")
    expect(phone.locator("#longitude")).to_have_value("121.473700")
    expect(phone.locator("#accuracy")).to_have_value("18")
    expect(phone.locator("#locate-status")).to_contain_text("已获取位置")
    assert phone.locator(".sidebar").is_hidden()  # the phone keeps the screen for the form
    phone.locator("#phone-menu summary").click()  # but a menu leads back to the workspace
    expect(phone.locator("#phone-menu nav a").first).to_be_visible()
    phone.locator("#phone-menu summary").click()
    photo: FilePayload = {"name": "门头.png", "mimeType": "image/png", "buffer": _png()}
    phone.locator("#photos").set_input_files([photo])
    screenshot(phone, "fieldwork-check-in-phone")

    phone.locator("#check-in-form button[type=submit]").click()

    result = phone.locator("#check-in-result")
    expect(result).to_contain_text("已签到")
    expect(result.locator("[data-field=latitude]")).to_have_text("31.23040")
    expect(result.locator(".checkin-photos img")).to_have_count(1)
    # the photo is served back (its element appears before the image has loaded: wait for the load)
    phone.wait_for_function("() => { const i = document.querySelector('.checkin-photos img'); return i && i.complete }")
    assert phone.locator(".checkin-photos img").evaluate("img => img.naturalWidth") == 96
    screenshot(phone, "fieldwork-checked-in-phone")


def test_starting_a_visit_without_an_account_keeps_the_form(phone: Page) -> None:
    phone.goto("/fieldwork")
    # the browser's own check would stop an empty choice first; a form sent without it (an older
    # browser, a script) must come back as the form, not a dead-end error page
    phone.locator("#start-visit select[name=account_id]").evaluate("select => select.removeAttribute('required')")
    phone.locator("#start-visit button[type=submit]").click()

    expect(phone.locator("#start-visit-account-error")).to_have_text("请选择要拜访的客户。")
    expect(phone.locator("#start-visit select[name=account_id]")).to_have_attribute("aria-invalid", "true")
    expect(phone.locator("h1")).to_contain_text("外勤")
    assert "account_id" not in phone.locator("main").inner_text()
    screenshot(phone, "fieldwork-start-visit-error-phone")

    phone.locator("#start-visit select[name=account_id]").select_option(index=1)
    phone.locator("#start-visit button[type=submit]").click()
    phone.wait_for_url("**/check-in")
