"""Translations: one gettext catalog per language (`<lang>/LC_MESSAGES/messages.po`, Babel),
the language of the work in hand, and dates and numbers written in it.

Adding a language is adding a catalog: every page, mail and message then offers it. The
`.po` files are committed; `pybabel compile -d src/idp/locales` makes the `.mo` files at
install (./run, the Dockerfile). A checkout where they are missing or older than their `.po`
compiles the catalog in memory on first use, so it never shows untranslated pages.

After changing text in a template or in Python (marked `_()`, `ngettext()`, or `N_()` for a
text translated where it is shown):
    pybabel extract -F babel.cfg --no-location --sort-output --no-wrap \
        -o /tmp/messages.pot .
    pybabel update -i /tmp/messages.pot -d src/idp/locales --no-fuzzy-matching \
        --ignore-obsolete --no-wrap
then translate the new entries; tests/test_i18n_catalogs.py fails until every one is.

The language is a context variable: the page middleware (idp.web.i18n) sets it for each
request, so `gettext` anywhere below answers in the customer's language; elsewhere (the
CLI, the outbox dispatcher) it is the default.
"""

from __future__ import annotations

import functools
import hashlib
import io
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from babel import Locale, negotiate_locale
from babel.dates import format_date, format_time
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import Translations
from jinja2 import Environment
from markupsafe import Markup

FOLDER = Path(__file__).parent
DOMAIN = "messages"
# The language of the texts in the source: templates, Python and operators' default texts.
SOURCE_LOCALE = "en"
# Accept-Language and ui_locales are read this far, and no further (a header of 4 KiB of tags
# costs nothing to skip).
MAX_PREFERENCES = 16

_current: ContextVar[str] = ContextVar("idp_locale", default=SOURCE_LOCALE)


def N_(message: str) -> str:
    """Marks a text for the catalogs where it is defined; it is translated where shown."""
    return message


@functools.cache
def catalog_locales() -> tuple[str, ...]:
    """Every language with a catalog, the source language first."""
    found = sorted(p.parent.parent.name for p in FOLDER.glob(f"*/LC_MESSAGES/{DOMAIN}.po"))
    return tuple(sorted(found, key=lambda tag: tag != SOURCE_LOCALE))


def _po_path(locale: str) -> Path:
    return FOLDER / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


@functools.cache
def translations(locale: str) -> Translations:
    """The compiled catalog of `locale` (empty for a language without one), loaded once."""
    po = _po_path(locale)
    if locale not in catalog_locales():
        return Translations(domain=DOMAIN)
    mo = po.with_suffix(".mo")
    if mo.is_file() and mo.stat().st_mtime >= po.stat().st_mtime:
        with mo.open("rb") as compiled:
            return Translations(compiled, DOMAIN)
    # An editable checkout whose catalogs were never compiled (or were edited since).
    with po.open("rb") as source:
        catalog = read_po(source, locale=locale, domain=DOMAIN)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(buffer, DOMAIN)


def current_locale() -> str:
    return _current.get()


def set_locale(locale: str) -> None:
    """The language of the rest of this request (or task)."""
    _current.set(locale)


@contextmanager
def using_locale(locale: str) -> Iterator[None]:
    """Within the block, texts are in `locale` (a mail rendered in its reader's language)."""
    token = _current.set(locale)
    try:
        yield
    finally:
        _current.reset(token)


def gettext(message: str, **variables: Any) -> str:
    """`message` in the current language; `%(name)s` placeholders filled from `variables`."""
    text = translations(_current.get()).gettext(message)
    return text % variables if variables else text


def ngettext(singular: str, plural: str, n: int, **variables: Any) -> str:
    """The plural form for `n` in the current language (Arabic has six); `%(num)s` is n."""
    text = translations(_current.get()).ngettext(singular, plural, n)
    return text % {"num": n, **variables}


_ = gettext


def install_gettext(env: Environment) -> None:
    """Jinja2's i18n extension (new style: `_("Hello %(name)s", name=...)`, autoescaped)
    answering in the current language."""
    env.add_extension("jinja2.ext.i18n")
    env.install_gettext_callables(  # type: ignore[attr-defined]
        lambda message: translations(_current.get()).gettext(message),
        lambda singular, plural, n: translations(_current.get()).ngettext(singular, plural, n),
        newstyle=True)
    env.filters["when"] = format_when
    env.filters["number"] = format_number
    env.filters["bdi"] = isolate
    env.filters["direction"] = direction
    from idp.locales import devices  # (it uses this module's gettext)
    env.filters["device"] = devices.on_page
    env.filters["device_words"] = devices.in_words


def isolate(value: Any) -> Any:
    """A name of the customer's or an app's inside a right-to-left sentence, isolated so its
    own direction cannot reorder the words around it (`<bdi>`, HTML §4.5.23)."""
    if direction(_current.get()) == "rtl":
        return Markup("<bdi>%s</bdi>") % value
    return value


def is_translated(message: str, locale: str) -> bool:
    """Whether `locale` has its own words for `message` (the source language always has)."""
    if locale == SOURCE_LOCALE:
        return True
    catalog: dict[Any, str] = getattr(translations(locale), "_catalog", {})
    return bool(catalog.get(message))


@functools.cache  # every page asks, for each language of the switcher
def direction(locale: str) -> str:
    """`rtl` or `ltr`, for `<html dir>` (Arabic is written right to left)."""
    return "rtl" if _locale(locale).character_order == "right-to-left" else "ltr"


@functools.cache
def native_name(locale: str) -> str:
    """The language's name in itself ("العربية", "English"), for the language switcher."""
    name = _locale(locale).get_display_name(locale) or locale
    return name[:1].upper() + name[1:]


@functools.cache
def _locale(tag: str) -> Locale:
    return Locale.parse(tag, sep="-") if "-" in tag else Locale.parse(tag)


def negotiate(preferred: Iterable[str], available: Iterable[str]) -> str | None:
    """The first of `preferred` (BCP 47 tags, best first) that `available` serves: an exact
    tag, else its language (ar-EG is served by ar); None when none is."""
    offered = list(available)
    for tag in list(preferred)[:MAX_PREFERENCES]:
        tag = tag.strip().replace("_", "-")
        if not tag or tag == "*" or len(tag) > 35:
            continue
        found = negotiate_locale([tag], offered, sep="-")
        if found:
            return found
    return None


def parse_accept_language(header: str) -> list[str]:
    """RFC 9110 §12.5.4: the tags of an Accept-Language header, best first (q=0 dropped)."""
    ranked: list[tuple[float, int, str]] = []
    for index, item in enumerate(header.split(",")[:MAX_PREFERENCES]):
        tag, _, params = item.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if tag.strip() and quality > 0:
            ranked.append((-quality, index, tag.strip()))
    return [tag for _, _, tag in sorted(ranked)]


def format_when(timestamp: int | float, locale: str | None = None) -> str:
    """A time as pages show it, in UTC: "05 Nov 2026, 14:03 UTC" in English, the language's
    own long date otherwise ("5 نوفمبر 2026، 14:03 التوقيت العالمي")."""
    locale = locale or _current.get()
    moment = datetime.fromtimestamp(int(timestamp), UTC)
    if locale == SOURCE_LOCALE:
        return moment.strftime("%d %b %Y, %H:%M UTC")
    rules = _locale(locale)
    glue = str(rules.datetime_formats["long"])
    return glue.replace("{1}", format_date(moment, "long", locale=rules)).replace(
        "{0}", format_time(moment, "HH:mm z", tzinfo=UTC, locale=rules))


def format_number(number: int | float, locale: str | None = None) -> str:
    return format_decimal(number, locale=_locale(locale or _current.get()))


def text_digest(*texts: str) -> str:
    """SHA-256 over texts as shown (each length-prefixed, so no two lists share a digest)."""
    hasher = hashlib.sha256()
    for text in texts:
        data = text.encode()
        hasher.update(len(data).to_bytes(4, "big") + data)
    return hasher.hexdigest()
