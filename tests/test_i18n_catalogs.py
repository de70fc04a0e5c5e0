"""The translation catalogs keep up with the source (issue 15 item 1): every text marked in
a template or in Python is in every catalog, and translated into Arabic with all six plural
forms and the same placeholders; nothing stale stays behind. A new page that marks its text
fails here until the catalogs are updated (commands: idp/locales/__init__.py)."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

from idp import locales

pytestmark = pytest.mark.no_database

ROOT = Path(__file__).resolve().parents[1]
ARABIC_PLURALS = ("nplurals=6; plural=(n == 0 ? 0 : n == 1 ? 1 : n == 2 ? 2 : "
                  "n % 100 >= 3 && n % 100 <= 10 ? 3 : n % 100 >= 11 && n % 100 <= 99 ? "
                  "4 : 5);")
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


def extracted() -> set[str | tuple[str, str]]:
    """What `pybabel extract -F babel.cfg` finds in the source, as the catalogs key it."""
    with (ROOT / "babel.cfg").open(encoding="utf-8") as config:
        method_map, options_map = parse_mapping_cfg(config)
    found: set[str | tuple[str, str]] = set()
    for _, _, message, _, _ in extract_from_dir(str(ROOT), method_map, options_map):
        found.add(message if isinstance(message, str) else (message[0], message[1]))
    return found


def catalog(locale: str) -> Catalog:
    with (locales.FOLDER / locale / "LC_MESSAGES" / "messages.po").open("rb") as source:
        return read_po(source, locale=locale)


def entries(found: Catalog) -> list[Message]:
    return [m for m in found if m.id]


def key(message: Message) -> str | tuple[str, str]:
    return message.id if isinstance(message.id, str) else (message.id[0], message.id[1])


@pytest.fixture(scope="module")
def source() -> set[str | tuple[str, str]]:
    return extracted()


def test_there_are_english_and_arabic_catalogs() -> None:
    assert locales.catalog_locales() == ("en", "ar")


@pytest.mark.parametrize("locale", ["en", "ar"])
def test_each_catalog_holds_exactly_what_the_source_marks(
        source: set[str | tuple[str, str]], locale: str) -> None:
    held = {key(m) for m in entries(catalog(locale))}
    assert sorted(map(str, source - held)) == [], "run pybabel extract and update"
    assert sorted(map(str, held - source)) == [], "stale entries: update with --ignore-obsolete"
    assert len(source) > 500


def test_every_text_has_an_arabic_translation_with_its_placeholders() -> None:
    arabic = catalog("ar")
    assert arabic.plural_forms == ARABIC_PLURALS
    problems = []
    for message in entries(arabic):
        if "fuzzy" in message.flags:
            problems.append(f"fuzzy: {message.id!r}")
        if isinstance(message.id, str):
            translated = [message.string] if isinstance(message.string, str) else []
            wanted = set(PLACEHOLDER.findall(message.id))
            if not translated or not translated[0]:
                problems.append(f"untranslated: {message.id!r}")
            elif set(PLACEHOLDER.findall(translated[0])) != wanted:
                problems.append(f"placeholders differ: {message.id!r}")
            continue
        forms = list(message.string) if isinstance(message.string, tuple) else []
        if len(forms) != 6 or not all(forms):
            problems.append(f"not all six plural forms: {message.id[0]!r}")
            continue
        # Arabic says "one minute" and "two minutes" without the number; every other
        # placeholder must be in every form, and the count in the forms from "few" on.
        counted = "num" in PLACEHOLDER.findall(message.id[1])
        wanted = set(PLACEHOLDER.findall(message.id[1])) - {"num"}
        for index, form in enumerate(forms):
            names = set(PLACEHOLDER.findall(form))
            if not wanted <= names or not names <= wanted | {"num"} or (
                    counted and index >= 3 and "num" not in names):
                problems.append(f"placeholders differ in form {index}: {message.id[0]!r}")
    assert problems == []


def test_no_english_sentence_is_left_as_its_own_translation() -> None:
    """Words kept in English on purpose (names of things) are listed; anything else that an
    Arabic entry copies from the English is a forgotten translation."""
    kept = set()
    copied = [m.id for m in entries(catalog("ar"))
              if isinstance(m.id, str) and m.string == m.id and m.id not in kept]
    assert copied == []
    latin = [m.id for m in entries(catalog("ar")) if isinstance(m.string, str)
             and re.search(r"\b(the|you|your|and|to|of)\b", PLACEHOLDER.sub("", m.string))]
    assert latin == []


def test_a_catalog_without_its_compiled_file_is_compiled_in_memory(tmp_path: Path) -> None:
    """An editable checkout never compiled (or edited since): the .po is read directly, and
    answers as the .mo that `pybabel compile` makes."""
    arabic = catalog("ar")
    buffer = io.BytesIO()
    write_mo(buffer, arabic)
    buffer.seek(0)
    compiled = Translations(buffer, "messages")
    locales.translations.cache_clear()
    mo = locales.FOLDER / "ar" / "LC_MESSAGES" / "messages.mo"
    hidden = tmp_path / "messages.mo"
    had_mo = mo.exists()
    if had_mo:
        mo.rename(hidden)
    try:
        fresh = locales.translations("ar")
        for message in entries(arabic)[:50]:
            if isinstance(message.id, str):
                assert fresh.gettext(message.id) == compiled.gettext(message.id)
        assert fresh.ngettext("Wait %(num)s second, then try again.",
                              "Wait %(num)s seconds, then try again.", 2) == (
            "انتظر ثانيتين ثم حاول مرة أخرى.")
    finally:
        if had_mo:
            hidden.rename(mo)
        locales.translations.cache_clear()
