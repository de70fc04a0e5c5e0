"""Indexes for "did this client send this code_challenge or nonce in the last minute": every
authorization request asks it of interactions and authorization codes (RFC 9700 §2.1.1)

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_interactions_client_created", "interactions",
                    ["client_id", "created_at"])
    op.create_index("ix_authorization_codes_client_created", "authorization_codes",
                    ["client_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_authorization_codes_client_created", table_name="authorization_codes")
    op.drop_index("ix_interactions_client_created", table_name="interactions")
