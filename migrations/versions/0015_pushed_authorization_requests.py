"""Pushed authorization requests (RFC 9126): the pushed requests, redeemed once, and the
client setting that makes them the only way in

Revision ID: 0015
Revises: 0014
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        batch.add_column(sa.Column("require_par", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
    op.create_table(
        "pushed_requests",
        sa.Column("handle_hash", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["client_id"], ["clients.client_id"], ondelete="CASCADE",
                                name=op.f("fk_pushed_requests_client_id_clients")),
        sa.PrimaryKeyConstraint("handle_hash", name=op.f("pk_pushed_requests")),
    )
    op.create_index(op.f("ix_pushed_requests_client_id"), "pushed_requests", ["client_id"],
                    unique=False)
    op.create_index(op.f("ix_pushed_requests_expires_at"), "pushed_requests", ["expires_at"],
                    unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_pushed_requests_expires_at"), table_name="pushed_requests")
    op.drop_index(op.f("ix_pushed_requests_client_id"), table_name="pushed_requests")
    op.drop_table("pushed_requests")
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("require_par")
