"""Consent texts in the customer's language (issue 15 item 4): purposes, data categories and
scope descriptions as shown on the consent page and in the account center, and the
operators' texts per language.

A purpose's own columns hold its words in the default language; an operator gives them in
another language (`idp purposes text`, PUT /admin/v1/consent-texts/purpose/...). Words given
for an earlier version of the purpose are stale after a material change, and the default
language's words are shown instead until they are given again: a customer never agrees to
a translation of an old meaning. Scopes and data categories have built-in words in every
catalog (idp.locales); an operator's words for a language replace them. Whatever has no
words in the customer's language is shown in the default language, and says so (`language`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from idp.locales import is_translated, text_digest, translations
from idp.protocol.consent import (
    CATEGORY_TITLES,
    DATA_CATEGORIES,
    ConsentAsk,
    PurposeInfo,
    group_scopes_by_category,
)
from idp.protocol.scopes import (
    API_SCOPE_DESCRIPTION,
    CLAIM_TITLES,
    SCOPES,
    ScopeInfo,
    describe_scopes,
    is_api_scope,
)
from idp.services import InvalidInput, NotFound
from idp.services.context import Context
from idp.store import audit
from idp.store import languages as language_store
from idp.store import purposes as purpose_store
from idp.store.models import ConsentText

KINDS = ("purpose", "scope", "category")


@dataclass(frozen=True)
class Override:
    title: str | None
    description: str | None
    purpose_version: int | None
    version: int


@dataclass(frozen=True)
class ConsentWords:
    """The consent texts of one language, with the default language's behind them."""

    locale: str
    default: str
    overrides: Mapping[tuple[str, str, str], Override]

    def _catalog(self, message: str, **variables: Any) -> str | None:
        """The catalog's words in this language, or None when it has none."""
        if not is_translated(message, self.locale):
            return None
        text = translations(self.locale).gettext(message)
        return text % variables if variables else text

    def _operator(self, kind: str, key: str, locale: str) -> Override | None:
        return self.overrides.get((kind, key, locale))

    def category(self, category: str) -> str:
        builtin = CATEGORY_TITLES.get(category, category)
        own = self._operator("category", category, self.locale)
        if own and own.title:
            return own.title
        shown = self._catalog(builtin)
        if shown is not None:
            return shown
        fallback = self._operator("category", category, self.default)
        return fallback.title if fallback and fallback.title else builtin

    def scope(self, info: ScopeInfo) -> ScopeInfo:
        own = self._operator("scope", info.name, self.locale)
        if own and own.description:
            return replace(info, description=own.description)
        if info.name in SCOPES:
            shown = self._catalog(SCOPES[info.name].description)
        else:
            shown = self._catalog(API_SCOPE_DESCRIPTION, scope=info.name)
        if shown is None:
            fallback = self._operator("scope", info.name, self.default)
            shown = fallback.description if fallback and fallback.description else None
        return replace(info, description=shown) if shown is not None else info

    def purpose(self, purpose: PurposeInfo) -> PurposeInfo:
        if self.locale != self.default:
            own = self._operator("purpose", purpose.id, self.locale)
            if (own and own.title and own.description
                    and own.purpose_version == purpose.version):
                return replace(purpose, title=own.title, description=own.description,
                               language=self.locale, text_version=own.version)
        return replace(purpose, language=self.default)

    def claim(self, name: str) -> str | None:
        title = CLAIM_TITLES.get(name)
        return None if title is None else translations(self.locale).gettext(title)


async def words_in(ctx: Context, session: AsyncSession, locale: str) -> ConsentWords:
    """The consent texts in `locale` (a language of the settings; else the default)."""
    default = ctx.settings.default_locale
    if locale not in ctx.settings.languages:
        locale = default
    rows = await language_store.texts_in(session, (locale, default))
    return ConsentWords(locale, default, {
        (row.kind, row.key, row.locale): Override(row.title, row.description,
                                                  row.purpose_version, row.version)
        for row in rows})


def purpose_record(purpose: PurposeInfo, language: str | None) -> dict[str, Any]:
    """What the consent ledger keeps of a purpose as shown (PRIV-05): its words, their
    language (`language`, the page's, unless the words fell back to another) and version,
    and a digest of them."""
    return {"id": purpose.id, "version": purpose.version, "title": purpose.title,
            "description": purpose.description, "legal_basis": purpose.legal_basis,
            "sale_or_share": purpose.sale_or_share,
            "data_categories": list(purpose.data_categories),
            "language": purpose.language or language, "text_version": purpose.text_version,
            "text_digest": text_digest(purpose.title, purpose.description)}


def shown_digest(words: ConsentWords, ask: ConsentAsk) -> str:
    """One digest of every consent text the page of `ask` shows in `words`' language, in
    order: an answer is recorded only while these are still the words (a purpose reworded,
    or the page's language changed, since it was shown asks again)."""
    grouped = group_scopes_by_category(ask.scopes)
    texts = [words.locale, *(words.category(category) for category in grouped)]
    texts += [f"{info.name}\n{words.scope(info).description}"
              for scopes in grouped.values() for info in describe_scopes(scopes)]
    texts += [f"{p.id}\n{p.version}\n{p.language}\n{p.text_version}\n{p.title}\n"
              f"{p.description}" for p in map(words.purpose, ask.purposes)]
    return text_digest(*texts)


# -- Operators -----------------------------------------------------------------------------


def text_view(row: ConsentText) -> dict[str, Any]:
    return {"kind": row.kind, "key": row.key, "locale": row.locale, "title": row.title,
            "description": row.description, "purpose_version": row.purpose_version,
            "version": row.version, "updated_at": row.updated_at}


async def _check_text(ctx: Context, session: AsyncSession, kind: str, key: str, locale: str,
                      title: str | None, description: str | None) -> int | None:
    """The rule a text breaks, as InvalidInput; a purpose's current version."""
    if kind not in KINDS:
        raise InvalidInput(f"kind must be one of {', '.join(KINDS)}")
    if locale not in ctx.settings.languages:
        raise InvalidInput(f"locale must be one of {', '.join(ctx.settings.languages)}")
    if kind == "purpose":
        purpose = await purpose_store.get_purpose(session, key)
        if purpose is None:
            raise NotFound(f"no purpose {key}")
        if locale == ctx.settings.default_locale:
            raise InvalidInput("a purpose's words in the default language are its own: "
                               "change them with `idp purposes update`")
        if not title or not description:
            raise InvalidInput("a purpose's words need a title and a description")
        return purpose.version
    if kind == "scope":
        if key not in SCOPES and not is_api_scope(key):
            raise InvalidInput(f"no scope {key}")
        if not description or title:
            raise InvalidInput("a scope's words are a description (no title)")
    if kind == "category":
        if key not in DATA_CATEGORIES:
            raise InvalidInput(f"data categories are {', '.join(DATA_CATEGORIES)}")
        if not title or description:
            raise InvalidInput("a data category's words are a title (no description)")
    return None


async def set_text(ctx: Context, kind: str, key: str, locale: str, *,
                   title: str | None = None, description: str | None = None,
                   actor: str = "cli") -> ConsentText:
    """Set an operator's words for a consent text in one language; each change raises the
    words' version (the ledger names the version shown)."""
    title = title.strip() if title and title.strip() else None
    description = description.strip() if description and description.strip() else None
    now = ctx.now()
    async with ctx.db.transaction() as session:
        purpose_version = await _check_text(ctx, session, kind, key, locale, title,
                                            description)
        row = await language_store.get_text(session, kind, key, locale)
        before = text_view(row) if row is not None else None
        if row is None:
            row = ConsentText(kind=kind, key=key, locale=locale, version=0)
            session.add(row)
        changed = (row.title, row.description, row.purpose_version) != (
            title, description, purpose_version)
        row.title, row.description, row.purpose_version = title, description, purpose_version
        if changed:
            row.version += 1
            row.updated_at = now
        await session.flush()
        audit.record(session, now, actor, "consent_text.set", kind, f"{key}:{locale}", before,
                     text_view(row))
    return row


async def remove_text(ctx: Context, kind: str, key: str, locale: str, *,
                      actor: str = "cli") -> None:
    """Remove an operator's words: the built-in (or default language's) words show again."""
    async with ctx.db.transaction() as session:
        row = await language_store.get_text(session, kind, key, locale)
        if row is None:
            raise NotFound(f"no {kind} text for {key} in {locale}")
        audit.record(session, ctx.now(), actor, "consent_text.remove", kind, f"{key}:{locale}",
                     text_view(row), None)
        await session.delete(row)


async def list_texts(ctx: Context, kind: str | None = None, key: str | None = None
                     ) -> list[dict[str, Any]]:
    async with ctx.db.transaction(read_only=True) as session:
        return [text_view(row) for row in await language_store.all_texts(session, kind, key)]
