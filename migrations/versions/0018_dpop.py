"""DPoP (RFC 9449): the proofs seen (replay), the client setting that requires proofs, and
the key a public client's refresh token is bound to

Revision ID: 0018
Revises: 0017
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        batch.add_column(sa.Column("dpop_bound_access_tokens", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
    with op.batch_alter_table("refresh_tokens") as batch:
        batch.add_column(sa.Column("dpop_jkt", sa.String(length=64), nullable=True))
    op.create_table(
        "dpop_proofs",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_dpop_proofs")),
    )
    op.create_index(op.f("ix_dpop_proofs_expires_at"), "dpop_proofs", ["expires_at"],
                    unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_dpop_proofs_expires_at"), table_name="dpop_proofs")
    op.drop_table("dpop_proofs")
    with op.batch_alter_table("refresh_tokens") as batch:
        batch.drop_column("dpop_jkt")
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("dpop_bound_access_tokens")
