"""teams conversation references

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "teams_reference",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("conversation_id", sa.String(length=512), nullable=False),
        sa.Column("conversation_type", sa.String(length=16), nullable=False),
        sa.Column("channel_id", sa.String(length=512), nullable=True),
        sa.Column("user_id", sa.String(length=256), nullable=False),
        sa.Column("aad_object_id", sa.String(length=64), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("user_name", sa.String(length=200), nullable=True),
        sa.Column("service_url", sa.String(length=500), nullable=False),
        sa.Column("reference", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organization.id"],
            name=op.f("fk_teams_reference_org_id_organization"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_teams_reference")),
        sa.UniqueConstraint(
            "tenant_id",
            "conversation_id",
            "user_id",
            name=op.f("uq_teams_reference_tenant_id_conversation_id_user_id"),
        ),
    )
    with op.batch_alter_table("teams_reference", schema=None) as batch_op:
        batch_op.create_index("ix_teams_reference_org_aad", ["org_id", "aad_object_id"])
        batch_op.create_index("ix_teams_reference_org_email", ["org_id", "email"])
        batch_op.create_index("ix_teams_reference_org_channel", ["org_id", "channel_id"])


def downgrade() -> None:
    with op.batch_alter_table("teams_reference", schema=None) as batch_op:
        batch_op.drop_index("ix_teams_reference_org_channel")
        batch_op.drop_index("ix_teams_reference_org_email")
        batch_op.drop_index("ix_teams_reference_org_aad")
    op.drop_table("teams_reference")
