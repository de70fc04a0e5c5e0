"""A real SMTP server for the mail tests (aiosmtpd on loopback), and reading what it got:
the `inbox` fixture (registered in conftest), delivering the outbox, finding a mail's link."""

from __future__ import annotations

import contextlib
import email
import email.policy
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from aiosmtpd.controller import Controller

from idp.notifications.dispatcher import Dispatcher
from idp.services.context import Context
from idp.services.senders import outbox_senders
from idp.settings import Settings
from tests.receiver import free_port


@dataclass
class Inbox:
    messages: list[EmailMessage] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]


@contextlib.contextmanager
def running_relay(**options: Any) -> Iterator[tuple[Inbox, int]]:
    """A real SMTP server (aiosmtpd) on a free loopback port, keeping what it receives;
    `options` go to its Controller (TLS, STARTTLS required)."""
    handler, port = Inbox(), free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, **options)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


@pytest.fixture(scope="session")
def mail_relay() -> Iterator[tuple[Inbox, int]]:
    """The tests' relay: one per test process. Its port stays the same from test to test, so
    the settings that name it do too, and so do the apps built from them (conftest's
    `app`)."""
    with running_relay() as relay:
        yield relay


@pytest.fixture
def inbox(mail_relay: tuple[Inbox, int]) -> tuple[Inbox, int]:
    """The relay, empty at the start of each test (mail goes out only when a test runs the
    outbox, `deliver`, so nothing of an earlier test arrives later)."""
    mail_relay[0].messages.clear()
    return mail_relay


def with_relay(settings: Settings, port: int) -> Settings:
    return settings.model_copy(update={
        "smtp_host": "127.0.0.1", "smtp_port": port, "smtp_security": "none",
        "mail_from": "Shop accounts <accounts@shop.test>"})


async def deliver(ctx: Context) -> int:
    """Run the outbox as the dispatcher of `idp serve` would, until a pass sends nothing (a
    reset request, carried out, puts its mail in the outbox); how many were sent."""
    dispatcher = Dispatcher(ctx, senders=outbox_senders, allow_private=True)
    total = 0
    try:
        for _ in range(5):
            sent = await dispatcher.run_once()
            if not sent:
                break
            total += sent
        return total
    finally:
        await dispatcher.close()


def link_in(message: EmailMessage) -> str:
    text = message.get_body(preferencelist=("plain",))
    assert text is not None
    match = re.search(r"https?://\S+", text.get_content())
    assert match, text.get_content()
    return match.group(0)


def token_of(link: str) -> str:
    return parse_qs(urlsplit(link).query)["token"][0]
