"""account linking, profile import with consent, account erasure: disabled accounts, upstream
token digests, import decisions, pending imports, upstream outbox messages, security events,
copied profile pictures

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("disabled_at", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("identities", schema=None) as batch_op:
        batch_op.add_column(sa.Column("refresh_token_digest", sa.String(length=128),
                                      nullable=True))
        batch_op.add_column(sa.Column("import_choices", sa.JSON(), nullable=True))
        batch_op.create_index("ix_identities_refresh_token_digest", ["refresh_token_digest"],
                              unique=False)
    with op.batch_alter_table("interactions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pending_import", sa.JSON(), nullable=True))
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.alter_column("client_id", existing_type=sa.String(length=64), nullable=True)
    op.create_table(
        "security_events",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=True),
        sa.Column("kind", sa.String(length=48), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_security_events")),
    )
    op.create_index("ix_security_events_user_id", "security_events", ["user_id"], unique=False)
    op.create_table(
        "pictures",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("content_type", sa.String(length=64), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"],
                                name=op.f("fk_pictures_user_id_users"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pictures")),
    )
    op.create_index("ix_pictures_user_id", "pictures", ["user_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_pictures_user_id", table_name="pictures")
    op.drop_table("pictures")
    op.drop_index("ix_security_events_user_id", table_name="security_events")
    op.drop_table("security_events")
    op.execute("DELETE FROM outbox WHERE client_id IS NULL")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.alter_column("client_id", existing_type=sa.String(length=64), nullable=False)
    with op.batch_alter_table("interactions", schema=None) as batch_op:
        batch_op.drop_column("pending_import")
    with op.batch_alter_table("identities", schema=None) as batch_op:
        batch_op.drop_index("ix_identities_refresh_token_digest")
        batch_op.drop_column("import_choices")
        batch_op.drop_column("refresh_token_digest")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("disabled_at")
