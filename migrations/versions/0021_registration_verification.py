"""Registration verifies the address first (issue 12 item 2): a registration link's token
belongs to no account yet

Revision ID: 0021
Revises: 0020
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A registration's link belongs to no account yet: the account is made when it is used.
    with op.batch_alter_table("account_tokens") as batch:
        batch.alter_column("user_id", existing_type=sa.String(length=64), nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM account_tokens WHERE user_id IS NULL")
    with op.batch_alter_table("account_tokens") as batch:
        batch.alter_column("user_id", existing_type=sa.String(length=64), nullable=False)
