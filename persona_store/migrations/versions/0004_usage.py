"""usage summaries: covering index for the summary scans, generated server secrets

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

SUMMARY_COLUMNS = [
    "org_id",
    "ts",
    "persona_id",
    "command",
    "matched",
    "user_id",
    "platform",
    "channel",
]


def upgrade() -> None:
    # The new index starts with the old one's columns, so the old one is redundant.
    with op.batch_alter_table("usage_event", schema=None) as batch_op:
        batch_op.drop_index("ix_usage_event_org_ts_persona")
        batch_op.create_index("ix_usage_event_summary", SUMMARY_COLUMNS, unique=False)
    op.create_table(
        "app_secret",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=256), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_app_secret")),
    )


def downgrade() -> None:
    op.drop_table("app_secret")
    with op.batch_alter_table("usage_event", schema=None) as batch_op:
        batch_op.drop_index("ix_usage_event_summary")
        batch_op.create_index(
            "ix_usage_event_org_ts_persona", ["org_id", "ts", "persona_id"], unique=False
        )
