"""The customer's CCPA/CPRA choices, and the pairwise subjects handed to apps (so a pairwise
`sub` an app sends back can be taken to the account it names)."""

from __future__ import annotations

from sqlalchemy import Boolean, ForeignKey, String, false
from sqlalchemy.orm import Mapped, mapped_column

from idp.store.models.base import Base


class PrivacyChoice(Base):
    """One row per account that made a choice; no row is "neither chosen". Each choice keeps
    how it was last set (account, gpc, operator) and when, for proof."""

    __tablename__ = "privacy_choices"

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         primary_key=True)
    # Cal. Civ. Code §1798.120: do not sell or share my personal information.
    do_not_sell_or_share: Mapped[bool] = mapped_column(Boolean, default=False)
    do_not_sell_set_by: Mapped[str | None] = mapped_column(String(16))
    do_not_sell_set_at: Mapped[int | None]
    # §1798.121: limit the use of my sensitive personal information.
    limit_sensitive_use: Mapped[bool] = mapped_column(Boolean, default=False)
    limit_sensitive_set_by: Mapped[str | None] = mapped_column(String(16))
    limit_sensitive_set_at: Mapped[int | None]
    # The customer allowed sale and sharing while their browser sent Global Privacy Control
    # (Cal. Code Regs. tit. 11 §7025(c)(3)): the signal no longer turns do-not-sell back on.
    gpc_override: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    updated_at: Mapped[int]


class PairwiseSubject(Base):
    """A pairwise `sub` (OIDC Core §8.1) and the account it names, written once, the first
    time a client of the sector is given it. The `sub` itself is computed, never read from
    here: this is the way back, for the `sub` an app sends (id_token_hint, a `sub` claims
    request)."""

    __tablename__ = "pairwise_subjects"

    sector: Mapped[str] = mapped_column(String(255), primary_key=True)
    sub: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         index=True)
    created_at: Mapped[int]
