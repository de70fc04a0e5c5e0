"""Languages: texts per language, the customer's language (issue 15)

Revision ID: 0026
Revises: 0025
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0026"
down_revision: str | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "consent_texts",
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("locale", sa.String(length=35), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("purpose_version", sa.BigInteger(), nullable=True),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("kind", "key", "locale", name=op.f("pk_consent_texts")),
    )
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("ui_locale", sa.String(length=35), nullable=True))
    with op.batch_alter_table("purposes") as batch:
        batch.add_column(sa.Column("text_version", sa.BigInteger(), nullable=False,
                                   server_default="1"))


def downgrade() -> None:
    with op.batch_alter_table("purposes") as batch:
        batch.drop_column("text_version")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("ui_locale")
    op.drop_table("consent_texts")
