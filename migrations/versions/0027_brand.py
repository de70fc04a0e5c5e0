"""Brand look: client logo and policy links (issue 15)

Revision ID: 0027
Revises: 0026
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# OIDC Dynamic Client Registration 1.0 §2 / RFC 7591 §2: shown on the consent page.
COLUMNS = ("logo_uri", "policy_uri", "tos_uri")

revision: str = "0027"
down_revision: str | None = "0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        for name in COLUMNS:
            batch.add_column(sa.Column(name, sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        for name in reversed(COLUMNS):
            batch.drop_column(name)
