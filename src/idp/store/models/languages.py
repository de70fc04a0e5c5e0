"""Texts per language that operators set: a purpose's words in another language than the
default, and their own words for a scope or a data category in place of the catalogs'."""

from __future__ import annotations

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from idp.store.models.base import Base


class ConsentText(Base):
    """One consent text in one language (issue 15 item 4). A purpose's own columns hold its
    default-language words; a row here gives them in another language. A scope's description
    or a data category's title here replaces the catalogs' in that language."""

    __tablename__ = "consent_texts"

    kind: Mapped[str] = mapped_column(String(16), primary_key=True)  # purpose|scope|category
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    # A BCP 47 tag of a language with a catalog (idp.locales).
    locale: Mapped[str] = mapped_column(String(35), primary_key=True)
    title: Mapped[str | None] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    # A purpose's: the version of the purpose these words say. After a material change of the
    # purpose they are stale, and the default language's words are shown until they are set
    # again (a translation of the old meaning must not be agreed to).
    purpose_version: Mapped[int | None]
    # Rises with every change of these words; the consent ledger names the version shown.
    version: Mapped[int]
    updated_at: Mapped[int]
