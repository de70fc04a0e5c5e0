"""Central customer profile: attribute schema, values with provenance, access log (issue 16)

Every value already in `users.profile` gets its provenance row: `upstream` with the provider
and time when a linked identity imported that very value, otherwise `imported` (set before
sources were kept) at the account's last update.

Revision ID: 0024
Revises: 0023
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("purposes", sa.Column("retention_days", sa.BigInteger(), nullable=True))
    op.create_table(
        "profile_attributes",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("title", sa.String(length=100), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("data_type", sa.String(length=16), nullable=False),
        sa.Column("sensitive", sa.Boolean(), nullable=False),
        sa.Column("purposes", sa.JSON(), nullable=False),
        sa.Column("customer_editable", sa.Boolean(), nullable=False),
        sa.Column("scope", sa.String(length=64), nullable=True),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_profile_attributes")),
    )
    op.create_table(
        "profile_provenance",
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("source_id", sa.String(length=128), nullable=True),
        sa.Column("purposes", sa.JSON(), nullable=False),
        sa.Column("purpose_bound", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE",
                                name=op.f("fk_profile_provenance_user_id_users")),
        sa.PrimaryKeyConstraint("user_id", "name", name=op.f("pk_profile_provenance")),
    )
    op.create_index(op.f("ix_profile_provenance_purpose_bound"), "profile_provenance",
                    ["purpose_bound"], unique=False)
    op.create_table(
        "profile_releases",
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("day", sa.BigInteger(), nullable=False),
        sa.Column("attribute", sa.String(length=64), nullable=False),
        sa.Column("via", sa.String(length=16), nullable=False),
        sa.Column("first_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE",
                                name=op.f("fk_profile_releases_user_id_users")),
        sa.PrimaryKeyConstraint("user_id", "client_id", "day", "attribute", "via",
                                name=op.f("pk_profile_releases")),
    )
    op.create_index(op.f("ix_profile_releases_day"), "profile_releases", ["day"], unique=False)
    _provenance_of_existing_values()


def _provenance_of_existing_values() -> None:
    connection = op.get_bind()
    users = sa.table("users", sa.column("id", sa.String), sa.column("profile", sa.JSON),
                     sa.column("updated_at", sa.BigInteger))
    identities = sa.table("identities", sa.column("user_id", sa.String),
                          sa.column("alias", sa.String), sa.column("profile", sa.JSON))
    imported: dict[str, dict[str, tuple[Any, str, int]]] = {}
    for user_id, alias, profile in connection.execute(
            sa.select(identities.c.user_id, identities.c.alias, identities.c.profile)):
        for name, item in (profile or {}).items():
            if isinstance(item, dict):
                at = int(item.get("at") or 0)
                known = imported.setdefault(user_id, {}).get(name)
                if known is None or at > known[2]:
                    imported[user_id][name] = (item.get("value"),
                                               str(item.get("source") or alias), at)
    provenance = sa.table(
        "profile_provenance", sa.column("user_id", sa.String), sa.column("name", sa.String),
        sa.column("source", sa.String), sa.column("source_id", sa.String),
        sa.column("purposes", sa.JSON), sa.column("purpose_bound", sa.Boolean),
        sa.column("updated_at", sa.BigInteger))
    rows = []
    for user_id, profile, updated_at in connection.execute(
            sa.select(users.c.id, users.c.profile, users.c.updated_at)):
        for name, value in (profile or {}).items():
            found = imported.get(user_id, {}).get(name)
            source, source_id, at = ("upstream", found[1], found[2] or updated_at) \
                if found is not None and found[0] == value else ("imported", None, updated_at)
            rows.append({"user_id": user_id, "name": name[:64], "source": source,
                         "source_id": source_id, "purposes": [], "purpose_bound": False,
                         "updated_at": at})
        if len(rows) >= 1000:
            connection.execute(provenance.insert(), rows)
            rows = []
    if rows:
        connection.execute(provenance.insert(), rows)


def downgrade() -> None:
    op.drop_index(op.f("ix_profile_releases_day"), table_name="profile_releases")
    op.drop_table("profile_releases")
    op.drop_index(op.f("ix_profile_provenance_purpose_bound"), table_name="profile_provenance")
    op.drop_table("profile_provenance")
    op.drop_table("profile_attributes")
    with op.batch_alter_table("purposes") as batch:
        batch.drop_column("retention_days")
