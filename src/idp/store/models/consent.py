"""Purposes of processing, which apps ask for them, and the consent ledger."""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from idp.store.models.base import Base, Json


class Purpose(Base):
    """Why data is processed, defined by the operator; its version rises on material change."""

    __tablename__ = "purposes"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    # identity | descriptive | attitudinal | behavioral
    data_categories: Mapped[list[str]] = mapped_column(JSON)
    legal_basis: Mapped[str] = mapped_column(String(32))  # consent | contract | legitimate_interest
    sale_or_share: Mapped[bool] = mapped_column(Boolean, default=False)  # CCPA/CPRA
    version: Mapped[int] = mapped_column(default=1)
    # Rises with every change of the title or description, material or not: the consent
    # ledger names the words shown (their translations: idp.store.models.languages).
    text_version: Mapped[int] = mapped_column(default=1)
    # Values collected only for this purpose are purged this many days after they were
    # set (None: kept while the purpose is granted; issue 16 item 6).
    retention_days: Mapped[int | None]
    created_at: Mapped[int]
    updated_at: Mapped[int]


class ClientPurpose(Base):
    __tablename__ = "client_purposes"

    client_id: Mapped[str] = mapped_column(
        ForeignKey("clients.client_id", ondelete="CASCADE"), primary_key=True
    )
    purpose_id: Mapped[str] = mapped_column(
        ForeignKey("purposes.id", ondelete="CASCADE"), primary_key=True
    )
    required: Mapped[bool] = mapped_column(Boolean, default=False)


class LedgerEntry(Base):
    """The consent ledger: append-only and hash-chained (PRIV-06, PRIV-07).

    `entry_hash` covers the previous hash, the sequence number, the header columns and the
    digest of `payload`, never the payload itself, so the personal data in `payload` can be
    erased (set to NULL) while the chain still verifies.
    """

    __tablename__ = "consent_ledger"

    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    entry_id: Mapped[str] = mapped_column(String(64), unique=True)
    grant_id: Mapped[str] = mapped_column(String(64), index=True)
    client_id: Mapped[str] = mapped_column(String(64))
    # Pseudonymous subject reference (HMAC of the user id), kept after erasure.
    subject_ref: Mapped[str] = mapped_column(String(64), index=True)
    action: Mapped[str] = mapped_column(String(16))  # grant | change | withdraw | reconsent
    channel: Mapped[str] = mapped_column(String(16))
    gpc: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[int]
    payload: Mapped[Json | None] = mapped_column(JSON)
    payload_digest: Mapped[str] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64))
