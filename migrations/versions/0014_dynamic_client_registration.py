"""Dynamic client registration (RFC 7591, RFC 7592): initial access tokens issued by
operators, and the digest of each self-registered client's registration access token

Revision ID: 0014
Revises: 0013
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        batch.add_column(sa.Column("registration_token_hash", sa.String(length=64),
                                   nullable=True))
    op.create_table(
        "initial_access_tokens",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("note", sa.String(length=200), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("uses_left", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_initial_access_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_initial_access_tokens_token_hash")),
    )
    op.create_index(op.f("ix_initial_access_tokens_expires_at"), "initial_access_tokens",
                    ["expires_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_initial_access_tokens_expires_at"),
                  table_name="initial_access_tokens")
    op.drop_table("initial_access_tokens")
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("registration_token_hash")
