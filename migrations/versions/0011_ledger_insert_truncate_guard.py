"""The consent ledger's append-only guard also stands against the two ways around it: SQLite's
INSERT OR REPLACE (its implicit delete fires no DELETE trigger) and PostgreSQL's TRUNCATE (no
row trigger fires) (PRIV-06)

Revision ID: 0011
Revises: 0010
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PG_FUNCTION = """
CREATE OR REPLACE FUNCTION consent_ledger_no_truncate() RETURNS trigger AS $$
BEGIN
  RAISE EXCEPTION 'consent_ledger is append-only';
END $$ LANGUAGE plpgsql
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_FUNCTION)
        op.execute("CREATE TRIGGER consent_ledger_no_truncate BEFORE TRUNCATE ON consent_ledger "
                   "FOR EACH STATEMENT EXECUTE FUNCTION consent_ledger_no_truncate()")
    else:
        # A new entry never shares its seq or entry_id with one already written: an insert
        # that does is a REPLACE (or an upsert) rewriting history.
        op.execute("""CREATE TRIGGER consent_ledger_no_replace BEFORE INSERT ON consent_ledger
            WHEN EXISTS (SELECT 1 FROM consent_ledger
                         WHERE seq = NEW.seq OR entry_id = NEW.entry_id)
            BEGIN SELECT RAISE(ABORT, 'consent_ledger is append-only'); END""")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS consent_ledger_no_truncate ON consent_ledger")
        op.execute("DROP FUNCTION IF EXISTS consent_ledger_no_truncate()")
    else:
        op.execute("DROP TRIGGER IF EXISTS consent_ledger_no_replace")
