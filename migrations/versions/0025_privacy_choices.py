"""Privacy choices and pairwise subjects (issue 16)

Revision ID: 0025
Revises: 0024
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "privacy_choices",
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("do_not_sell_or_share", sa.Boolean(), nullable=False),
        sa.Column("do_not_sell_set_by", sa.String(length=16), nullable=True),
        sa.Column("do_not_sell_set_at", sa.BigInteger(), nullable=True),
        sa.Column("limit_sensitive_use", sa.Boolean(), nullable=False),
        sa.Column("limit_sensitive_set_by", sa.String(length=16), nullable=True),
        sa.Column("limit_sensitive_set_at", sa.BigInteger(), nullable=True),
        sa.Column("gpc_override", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE",
                                name=op.f("fk_privacy_choices_user_id_users")),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_privacy_choices")),
    )
    op.create_table(
        "pairwise_subjects",
        sa.Column("sector", sa.String(length=255), nullable=False),
        sa.Column("sub", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE",
                                name=op.f("fk_pairwise_subjects_user_id_users")),
        sa.PrimaryKeyConstraint("sector", "sub", name=op.f("pk_pairwise_subjects")),
    )
    op.create_index(op.f("ix_pairwise_subjects_user_id"), "pairwise_subjects", ["user_id"],
                    unique=False)
    with op.batch_alter_table("clients") as batch:
        batch.add_column(sa.Column("subject_type", sa.String(length=16), nullable=False,
                                   server_default="public"))
        batch.add_column(sa.Column("sector_identifier_uri", sa.Text(), nullable=True))
        batch.add_column(sa.Column("sector_identifier", sa.String(length=255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("sector_identifier")
        batch.drop_column("sector_identifier_uri")
        batch.drop_column("subject_type")
    op.drop_index(op.f("ix_pairwise_subjects_user_id"), table_name="pairwise_subjects")
    op.drop_table("pairwise_subjects")
    op.drop_table("privacy_choices")
