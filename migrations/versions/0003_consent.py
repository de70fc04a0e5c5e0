"""consent: purposes, grant choices, ledger, events

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EMPTY_LIST = sa.text("'[]'")

# PRIV-06: the ledger is append-only at the database level. The one update allowed is erasure
# of the payload (personal data); every chained column must stay as it was.
CHAINED = (
    "seq, entry_id, grant_id, client_id, subject_ref, action, channel, gpc, created_at, "
    "payload_digest, prev_hash, entry_hash"
)
PG_FUNCTION = f"""
CREATE OR REPLACE FUNCTION consent_ledger_append_only() RETURNS trigger AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND NEW.payload IS NULL
     AND ROW({", ".join("NEW." + c.strip() for c in CHAINED.split(","))})
         IS NOT DISTINCT FROM ROW({", ".join("OLD." + c.strip() for c in CHAINED.split(","))}) THEN
    RETURN NEW;
  END IF;
  RAISE EXCEPTION 'consent_ledger is append-only';
END $$ LANGUAGE plpgsql
"""
SQLITE_TRIGGERS = (
    """CREATE TRIGGER consent_ledger_no_delete BEFORE DELETE ON consent_ledger
       BEGIN SELECT RAISE(ABORT, 'consent_ledger is append-only'); END""",
    f"""CREATE TRIGGER consent_ledger_no_update BEFORE UPDATE ON consent_ledger
       WHEN NEW.payload IS NOT NULL
         OR ({", ".join("NEW." + c.strip() for c in CHAINED.split(","))})
            IS NOT ({", ".join("OLD." + c.strip() for c in CHAINED.split(","))})
       BEGIN SELECT RAISE(ABORT, 'consent_ledger is append-only'); END""",
)


def upgrade() -> None:
    op.create_table(
        "consent_ledger",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("entry_id", sa.String(length=64), nullable=False),
        sa.Column("grant_id", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("subject_ref", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("gpc", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=True),
        sa.Column("payload_digest", sa.String(length=64), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("entry_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_consent_ledger")),
        sa.UniqueConstraint("entry_id", name=op.f("uq_consent_ledger_entry_id")),
    )
    with op.batch_alter_table("consent_ledger", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_consent_ledger_grant_id"), ["grant_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_consent_ledger_subject_ref"), ["subject_ref"], unique=False
        )

    op.create_table(
        "purposes",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("data_categories", sa.JSON(), nullable=False),
        sa.Column("legal_basis", sa.String(length=32), nullable=False),
        sa.Column("sale_or_share", sa.Boolean(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_purposes")),
    )
    op.create_table(
        "client_purposes",
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("purpose_id", sa.String(length=64), nullable=False),
        sa.Column("required", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.client_id"],
            name=op.f("fk_client_purposes_client_id_clients"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["purpose_id"],
            ["purposes.id"],
            name=op.f("fk_client_purposes_purpose_id_purposes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("client_id", "purpose_id", name=op.f("pk_client_purposes")),
    )
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("optional_scopes", sa.JSON(), nullable=False, server_default=EMPTY_LIST)
        )
        batch_op.add_column(sa.Column("event_uri", sa.Text(), nullable=True))

    with op.batch_alter_table("grants", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("purposes", sa.JSON(), nullable=False, server_default=EMPTY_LIST)
        )
        batch_op.add_column(
            sa.Column("declined_scopes", sa.JSON(), nullable=False, server_default=EMPTY_LIST)
        )
        batch_op.add_column(
            sa.Column("declined_purposes", sa.JSON(), nullable=False, server_default=EMPTY_LIST)
        )
        batch_op.add_column(
            sa.Column("gpc", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(
            sa.Column("channel", sa.String(length=16), nullable=False, server_default="web")
        )

    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("change_id", sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f("ix_outbox_change_id"), ["change_id"], unique=False)

    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_FUNCTION)
        op.execute(
            "CREATE TRIGGER consent_ledger_append_only BEFORE UPDATE OR DELETE ON consent_ledger "
            "FOR EACH ROW EXECUTE FUNCTION consent_ledger_append_only()"
        )
    else:
        for statement in SQLITE_TRIGGERS:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS consent_ledger_append_only ON consent_ledger")
        op.execute("DROP FUNCTION IF EXISTS consent_ledger_append_only()")
    else:
        op.execute("DROP TRIGGER IF EXISTS consent_ledger_no_delete")
        op.execute("DROP TRIGGER IF EXISTS consent_ledger_no_update")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbox_change_id"))
        batch_op.drop_column("change_id")

    with op.batch_alter_table("grants", schema=None) as batch_op:
        batch_op.drop_column("channel")
        batch_op.drop_column("gpc")
        batch_op.drop_column("declined_purposes")
        batch_op.drop_column("declined_scopes")
        batch_op.drop_column("purposes")

    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.drop_column("event_uri")
        batch_op.drop_column("optional_scopes")

    op.drop_table("client_purposes")
    op.drop_table("purposes")
    with op.batch_alter_table("consent_ledger", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_consent_ledger_subject_ref"))
        batch_op.drop_index(batch_op.f("ix_consent_ledger_grant_id"))

    op.drop_table("consent_ledger")
