"""Device authorization grant (RFC 8628): device codes and their user codes, both stored as
digests, with the approval the customer gives on another screen

Revision ID: 0017
Revises: 0016
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("refresh_tokens") as batch:
        batch.add_column(sa.Column("device", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
    op.create_table(
        "device_codes",
        sa.Column("device_code_hash", sa.String(length=64), nullable=False),
        sa.Column("user_code_hash", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=True),
        sa.Column("grant_id", sa.String(length=64), nullable=True),
        sa.Column("scopes", sa.JSON(), nullable=True),
        sa.Column("sid", sa.String(length=64), nullable=True),
        sa.Column("auth_time", sa.BigInteger(), nullable=True),
        sa.Column("amr", sa.JSON(), nullable=True),
        sa.Column("acr", sa.String(length=64), nullable=True),
        sa.Column("interval", sa.BigInteger(), nullable=False),
        sa.Column("last_polled_at", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("used_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["client_id"], ["clients.client_id"], ondelete="CASCADE",
                                name=op.f("fk_device_codes_client_id_clients")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE",
                                name=op.f("fk_device_codes_user_id_users")),
        sa.ForeignKeyConstraint(["grant_id"], ["grants.id"], ondelete="CASCADE",
                                name=op.f("fk_device_codes_grant_id_grants")),
        sa.PrimaryKeyConstraint("device_code_hash", name=op.f("pk_device_codes")),
        sa.UniqueConstraint("user_code_hash", name=op.f("uq_device_codes_user_code_hash")),
    )
    op.create_index(op.f("ix_device_codes_expires_at"), "device_codes", ["expires_at"],
                    unique=False)
    op.create_index(op.f("ix_device_codes_grant_id"), "device_codes", ["grant_id"],
                    unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_device_codes_grant_id"), table_name="device_codes")
    op.drop_index(op.f("ix_device_codes_expires_at"), table_name="device_codes")
    op.drop_table("device_codes")
    with op.batch_alter_table("refresh_tokens") as batch:
        batch.drop_column("device")
