"""Mail to customers, through the outbox: a message is rendered and sealed (encrypted with a
key derived from IDP_KEY_ENCRYPTION_SECRET) in the transaction of the change that sends it,
and delivered by the dispatcher with its retries, never inline in a request. Once delivered
or abandoned, its content is dropped: a reset link does not outlive its delivery in the
database, even encrypted.

Delivery goes to the SMTP relay of the settings (STARTTLS, implicit TLS, or plain on
loopback). Without one, dev mode writes each message as an .eml file to IDP_MAIL_DIR and
logs its link; otherwise the message waits, failing, until a relay is configured.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import smtplib
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.ext.asyncio import AsyncSession

from idp import locales
from idp.crypto.keys import KeyEncryptor
from idp.net.tls import smtp_context
from idp.notifications.outbox import enqueue
from idp.notifications.senders import Outcome
from idp.settings import Settings
from idp.store.models import OutboxMessage

MAIL = "mail"
log = logging.getLogger("idp.mail")
_TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]), keep_trailing_newline=True)
# Mails mark their text like pages (idp.locales), rendered in their reader's language.
locales.install_gettext(_TEMPLATES)
_LINK = re.compile(r"https?://\S+")


def sealer(settings: Settings) -> KeyEncryptor:
    return _sealer(settings.resolved_key_secret())


@functools.lru_cache(maxsize=4)
def _sealer(secret: str) -> KeyEncryptor:
    # Derived once per secret, not on every message sealed or opened.
    return KeyEncryptor(secret, purpose="mail")


def enqueue_mail(session: AsyncSession, settings: Settings, to: str, template: str,
                 context: dict[str, Any], now: int, locale: str | None = None) -> str:
    """Render `template` (.subject.txt, .txt and .html under notifications/templates) for
    `to` and put it in the outbox in the caller's unit of work. In `locale` (the reader's:
    the language of the request that enqueued it when not named), which the message keeps."""
    locale = locale or locales.current_locale()
    if locale not in settings.languages:
        locale = settings.default_locale
    with locales.using_locale(locale):
        context = {**context, "lang": locale, "dir": locales.direction(locale)}
        subject = _TEMPLATES.get_template(f"{template}.subject.txt").render(context).strip()
        text = _TEMPLATES.get_template(f"{template}.txt").render(context)
        html = _TEMPLATES.get_template(f"{template}.html").render(context)
    sealed = sealer(settings).encrypt({"to": to, "subject": subject, "text": text,
                                       "html": html, "locale": locale})
    # The target names no address: logs and /admin/v1/outbox show "mail", never whose.
    return enqueue(session, MAIL, None, "mail",
                   {"template": template, "locale": locale, "sealed": sealed}, now)


@dataclass(frozen=True)
class MailSender:
    settings: Settings

    async def send(self, message: OutboxMessage) -> Outcome:
        sealed = message.payload.get("sealed")
        if not isinstance(sealed, str):
            return Outcome(False, False, None, "the message has no content")
        content = sealer(self.settings).decrypt(sealed)
        mail = self._message(content)
        if self.settings.smtp_host:
            try:
                await asyncio.to_thread(self._relay, mail)
            except smtplib.SMTPRecipientsRefused:
                return Outcome(False, False, None, "the relay refused the recipient")
            except (smtplib.SMTPException, OSError) as exc:
                return Outcome(False, True, None, type(exc).__name__)
            return Outcome(True, False, None, None)
        if self.settings.dev_mode:
            path = await asyncio.to_thread(self._write, mail, message.id)
            links = _LINK.findall(str(content["text"]))
            log.warning("mail written to %s (dev mode, no IDP_SMTP_HOST)%s", path,
                        f"; its link: {links[0]}" if links else "")
            return Outcome(True, False, None, None)
        return Outcome(False, True, None, "no SMTP relay is configured (IDP_SMTP_HOST)")

    def finished_payload(self, payload: dict[str, Any]) -> dict[str, Any] | None:
        return {"template": payload.get("template"), "locale": payload.get("locale")}

    def _message(self, content: dict[str, Any]) -> EmailMessage:
        mail = EmailMessage()
        mail["From"] = self.settings.mail_from
        mail["To"] = str(content["to"])
        mail["Subject"] = str(content["subject"])
        domain = self.settings.mail_from.rpartition("@")[2].strip("> ") or "localhost"
        mail["Message-ID"] = make_msgid(domain=domain)
        mail.set_content(str(content["text"]))
        mail.add_alternative(str(content["html"]), subtype="html")
        if content.get("locale"):  # after the content, which sets the Content-* headers
            mail["Content-Language"] = str(content["locale"])  # RFC 3282
        return mail

    def _relay(self, mail: EmailMessage) -> None:
        settings = self.settings
        assert settings.smtp_host is not None
        timeout = settings.smtp_timeout_seconds
        context = smtp_context()
        smtp: smtplib.SMTP
        if settings.smtp_security == "tls":
            smtp = smtplib.SMTP_SSL(settings.smtp_host, settings.smtp_port, timeout=timeout,
                                    context=context)
        else:
            smtp = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=timeout)
        with smtp:
            if settings.smtp_security == "starttls":
                smtp.starttls(context=context)
            if settings.smtp_username:
                password = settings.smtp_password.get_secret_value() if (
                    settings.smtp_password) else ""
                smtp.login(settings.smtp_username, password)
            smtp.send_message(mail)

    def _write(self, mail: EmailMessage, message_id: str) -> Path:
        directory = self.settings.mail_dir
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{message_id}.eml"
        path.write_bytes(bytes(mail))
        return path
