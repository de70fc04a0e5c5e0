"""The admin audit log: every change an operator makes through the CLI or the admin API,
with who, what, when, and the object before and after

Revision ID: 0013
Revises: 0012
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "admin_events",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  autoincrement=True, nullable=False),
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target_type", sa.String(length=32), nullable=False),
        sa.Column("target_id", sa.String(length=64), nullable=False),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_admin_events")),
        sa.UniqueConstraint("id", name=op.f("uq_admin_events_id")),
    )
    op.create_index(op.f("ix_admin_events_target_id"), "admin_events", ["target_id"],
                    unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_admin_events_target_id"), table_name="admin_events")
    op.drop_table("admin_events")
