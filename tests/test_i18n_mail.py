"""Mail in the customer's language (issue 15 item 1): the language travels with the outbox
message (the customer's when it was enqueued), through a real SMTP server."""

from __future__ import annotations

import datetime
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import select

from idp.services.context import Context
from idp.settings import Settings
from idp.store.models import OutboxMessage
from tests.conftest import ISSUER, FakeClock, make_settings
from tests.helpers import (
    Flow,
    account_sign_in,
    authorize,
    csrf_token,
    make_app,
    make_user,
)
from tests.mailbox import Inbox, deliver, link_in, token_of, with_relay

ARABIC_MONTHS = ("يناير", "فبراير", "مارس", "أبريل", "مايو", "يونيو", "يوليو", "أغسطس",
                 "سبتمبر", "أكتوبر", "نوفمبر", "ديسمبر")


@pytest.fixture
def settings(database_url: str, inbox: tuple[Inbox, int]) -> Settings:
    return with_relay(make_settings(database_url), inbox[1])


def body(message: EmailMessage, kind: str) -> str:
    part = message.get_body(preferencelist=(kind,))
    assert part is not None
    return str(part.get_content())


async def mail_locales(ctx: Context) -> list[str | None]:
    async with ctx.db.transaction() as session:
        rows = await session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "mail")
                                     .order_by(OutboxMessage.created_at))
        return [row.payload.get("locale") for row in rows]


async def test_a_reset_asked_for_in_arabic_is_mailed_in_arabic(
        client: httpx.AsyncClient, ctx: Context, inbox: tuple[Inbox, int]) -> None:
    received, _ = inbox
    await make_user(ctx)
    headers = {"Accept-Language": "ar"}
    page = await client.get("/account/forgot", headers=headers)
    answer = await client.post("/account/forgot", headers=headers, data={
        "csrf_token": csrf_token(page.text), "email": "alice@example.com"})
    assert "<h1>تفقّد بريدك الوارد</h1>" in answer.text
    assert await deliver(ctx) == 2  # the request (carrying the language), then its mail
    (message,) = received.messages
    assert message["Subject"] == "إعادة تعيين كلمة المرور"
    assert message["Content-Language"] == "ar"
    text = body(message, "plain")
    assert text.startswith("مرحبًا،\n\nطلب أحدهم إعادة تعيين كلمة مرور حسابك في idp "
                           "operator. إن كنت أنت، فاختر كلمة مرور جديدة من هنا خلال 30 "
                           "دقيقة:\n\n")
    html = body(message, "html")
    assert '<html lang="ar" dir="rtl">' in html and "<bdi>idp operator</bdi>" in html
    # The link in it works as in English, and kept the language only as metadata.
    link = link_in(message)
    assert link.startswith(f"{ISSUER}/account/reset?token=") and token_of(link)
    assert await mail_locales(ctx) == ["ar"]
    reset = await client.get(link.removeprefix(ISSUER), headers=headers)
    assert reset.status_code == 200 and "<h1>اختر كلمة مرور جديدة</h1>" in reset.text


async def test_a_registration_from_an_arabic_sign_in_is_mailed_in_arabic(
        ctx: Context, inbox: tuple[Inbox, int], new_browser: Any) -> None:
    received, _ = inbox
    shop = await make_app(ctx, name="Shop")
    browser = new_browser()
    login_page = await authorize(browser, Flow(shop), ui_locales="ar")
    register = await browser.get(urlsplit(str(login_page.url)).path.replace("/login",
                                                                            "/register"))
    assert '<html lang="ar" dir="rtl">' in register.text
    # The browser says English, but the page (the app's ui_locales) is Arabic: so is the mail.
    await browser.post(urlsplit(str(register.url)).path, headers={"Accept-Language": "en"},
                       data={"csrf_token": csrf_token(register.text),
                             "email": "new@example.com"})
    assert await deliver(ctx) == 2
    (message,) = received.messages
    assert message["Subject"] == "أكمل إنشاء حسابك في idp operator"
    assert "لاستخدام Shop" in body(message, "plain")
    assert "<bdi>Shop</bdi>" in body(message, "html")


async def test_an_english_customer_gets_english_mail(
        client: httpx.AsyncClient, ctx: Context, inbox: tuple[Inbox, int]) -> None:
    received, _ = inbox
    await make_user(ctx)
    page = await client.get("/account/forgot")
    await client.post("/account/forgot", data={"csrf_token": csrf_token(page.text),
                                               "email": "alice@example.com"})
    assert await deliver(ctx) == 2
    (message,) = received.messages
    assert message["Subject"] == "Reset your password" and message["Content-Language"] == "en"
    assert '<html lang="en" dir="ltr">' in body(message, "html")


async def test_a_new_device_notice_is_in_the_account_language_with_an_arabic_date(
        ctx: Context, inbox: tuple[Inbox, int], new_browser: Any, clock: FakeClock) -> None:
    received, _ = inbox
    await make_user(ctx)
    phone = new_browser()
    await account_sign_in(phone)
    await phone.get("/language", params={"lang": "ar", "next": "/account"},
                    headers={"Sec-Fetch-Site": "same-origin"})
    assert await deliver(ctx) == 0
    clock.advance(60)
    laptop = new_browser()  # a new device, whose browser asks for English
    laptop.headers["Accept-Language"] = "en"
    laptop.headers["User-Agent"] = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) "
                                    "Gecko/20100101 Firefox/128.0")
    await account_sign_in(laptop)
    assert await deliver(ctx) == 1
    (notice,) = received.messages
    assert notice["Content-Language"] == "ar"
    assert notice["Subject"].startswith("تسجيل دخول جديد إلى حسابك من ")
    when = datetime.datetime.fromtimestamp(int(clock.value), datetime.UTC)
    text = body(notice, "plain")
    assert (f"الوقت: {when.day} {ARABIC_MONTHS[when.month - 1]} {when.year}، "
            f"{when:%H:%M} التوقيت العالمي") in text
    assert "الجهاز: " in text and "الشبكة: " in text
