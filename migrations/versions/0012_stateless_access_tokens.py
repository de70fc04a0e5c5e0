"""Access tokens lose their row: a JWT is judged by its grant's token epoch and a short list of
narrower revocations (one token, a browser session, an authorization code's descendants).
Writing a row per token was a third of a token request's CPU and a table that only grew.

Access tokens issued before this revision carry no epoch and stop working at once; apps
refresh them as they would an expired one.

Revision ID: 0012
Revises: 0011
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "token_revocations",
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("revoked_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_token_revocations")),
    )
    op.create_index(op.f("ix_token_revocations_expires_at"), "token_revocations",
                    ["expires_at"], unique=False)
    with op.batch_alter_table("grants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("token_epoch", sa.BigInteger(), nullable=False,
                                      server_default="0"))
    op.drop_table("access_tokens")


def downgrade() -> None:
    # The rows of tokens issued meanwhile are not recreated: those tokens stop working.
    op.create_table(
        "access_tokens",
        sa.Column("jti", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=True),
        sa.Column("grant_id", sa.String(length=64), nullable=True),
        sa.Column("code_hash", sa.String(length=64), nullable=True),
        sa.Column("sid", sa.String(length=64), nullable=True),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("claims", sa.JSON(), nullable=True),
        sa.Column("issued_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("revoked_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["client_id"], ["clients.client_id"],
                                name=op.f("fk_access_tokens_client_id_clients"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["grant_id"], ["grants.id"],
                                name=op.f("fk_access_tokens_grant_id_grants"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"],
                                name=op.f("fk_access_tokens_user_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("jti", name=op.f("pk_access_tokens")),
    )
    op.create_index(op.f("ix_access_tokens_grant_id"), "access_tokens", ["grant_id"])
    op.create_index(op.f("ix_access_tokens_sid"), "access_tokens", ["sid"])
    op.create_index("ix_access_tokens_code_hash", "access_tokens", ["code_hash"])
    with op.batch_alter_table("grants", schema=None) as batch_op:
        batch_op.drop_column("token_epoch")
    op.drop_index(op.f("ix_token_revocations_expires_at"), table_name="token_revocations")
    op.drop_table("token_revocations")
