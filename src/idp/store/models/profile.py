"""The central customer profile: the operator's attribute schema, where each stored value came
from, and which app received which attribute on which day.

The values themselves stay in `users.profile`, the read copy the token, UserInfo and Profile
API paths read with the account in one statement; `profile_provenance` keeps, per value, its
source and time (issue 16 item 1)."""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from idp.store.models.base import Base, Json


class ProfileAttribute(Base):
    """One attribute the operator described (custom, or a standard OIDC claim described)."""

    __tablename__ = "profile_attributes"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    type: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text, default="")
    # identity, descriptive, attitudinal or behavioral (idp.protocol.consent.DATA_CATEGORIES)
    data_type: Mapped[str] = mapped_column(String(16))
    # CPRA sensitive personal information (Cal. Civ. Code §1798.140(ae)).
    sensitive: Mapped[bool] = mapped_column(Boolean, default=False)
    purposes: Mapped[list[str]] = mapped_column(JSON, default=list)
    customer_editable: Mapped[bool] = mapped_column(Boolean, default=False)
    # The operator-defined scope under which a custom attribute is released as a claim.
    scope: Mapped[str | None] = mapped_column(String(64))
    # Validation: max_length, pattern, minimum, maximum, values (enum).
    rules: Mapped[Json] = mapped_column(JSON, default=dict)
    created_at: Mapped[int]
    updated_at: Mapped[int]


class ProfileProvenance(Base):
    """Where one value of `users.profile` came from, and when it was set."""

    __tablename__ = "profile_provenance"

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    # customer | upstream | app | operator | imported (kept from before provenance was kept)
    source: Mapped[str] = mapped_column(String(16))
    # The upstream's alias, the app's client_id, the operator; for the customer, the app
    # whose consent page collected it (None: the account center).
    source_id: Mapped[str | None] = mapped_column(String(128))
    # The purposes it was collected for; the retention job purges it once none is live.
    purposes: Mapped[list[str]] = mapped_column(JSON, default=list)
    purpose_bound: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    updated_at: Mapped[int]


class ProfileRelease(Base):
    """The access log: an app received an attribute on a day (UTC), by a way (`id_token`,
    `userinfo`, `profile_api`), first at `first_at`. One row per day, never per request."""

    __tablename__ = "profile_releases"

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # Days since 1970-01-01 (UTC); indexed for the purge of days past the log's keeping.
    day: Mapped[int] = mapped_column(primary_key=True, index=True)
    attribute: Mapped[str] = mapped_column(String(64), primary_key=True)
    via: Mapped[str] = mapped_column(String(16), primary_key=True)
    first_at: Mapped[int]
