"""SMART on FHIR EHR launches and the EHR identifiers linked to clinic patients.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Ids never handed out twice, as on every other table (see models._NEVER_REUSE).
    sqlite = {"sqlite_autoincrement": True}
    op.create_table(
        "patient_identifiers",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("patient_id", sa.Integer, sa.ForeignKey("patients.id"), nullable=False),
        sa.Column("system", sa.String(500), nullable=False),
        sa.Column("value", sa.String(200), nullable=False),
        sa.Column("linked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("linked_by", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.UniqueConstraint("system", "value", name="uq_patient_identifiers_system_value"),
        **sqlite,
    )
    op.create_index("ix_patient_identifiers_patient_id", "patient_identifiers", ["patient_id"])
    op.create_table(
        "smart_launches",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("state_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("browser_hash", sa.String(64), nullable=False),
        sa.Column("handle_hash", sa.String(64), nullable=True, unique=True),
        sa.Column("verifier", sa.String(128), nullable=False),
        sa.Column("iss", sa.String(500), nullable=False),
        sa.Column("launch", sa.String(500), nullable=False),
        sa.Column("token_endpoint", sa.String(500), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state_expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("access_token", sa.Text, nullable=True),
        sa.Column("token_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("fhir_patient", sa.String(64), nullable=True),
        sa.Column("context", sa.JSON, nullable=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("visit_id", sa.Integer, sa.ForeignKey("visits.id"), nullable=True, unique=True),
        sa.Column("write_back", sa.String(16), nullable=False),
        sa.Column("write_back_detail", sa.Text, nullable=False),
        sa.Column("write_back_at", sa.DateTime(timezone=True), nullable=True),
        **sqlite,
    )


def downgrade() -> None:
    op.drop_table("smart_launches")
    op.drop_index("ix_patient_identifiers_patient_id", "patient_identifiers")
    op.drop_table("patient_identifiers")
