"""Browser sessions remember their device and network (issue 12 item 8)

Revision ID: 0020
Revises: 0019
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Sessions started before this revision show "Unknown device" and their sign-in time as
    # their last use.
    with op.batch_alter_table("browser_sessions") as batch:
        batch.add_column(sa.Column("device", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("network", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("last_used_at", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("browser_sessions") as batch:
        batch.drop_column("last_used_at")
        batch.drop_column("network")
        batch.drop_column("device")
