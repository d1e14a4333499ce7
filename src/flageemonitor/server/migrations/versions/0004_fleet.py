"""Fleet: proxies, run reports, the latest-state tables the pages read, people, web sessions,
admin tokens; the client-token scope `reports:write` is spelled `report:write`.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def _network_fk() -> sa.Column[int]:
    return sa.Column("network_id", sa.Integer, sa.ForeignKey("networks.id", ondelete="CASCADE"), nullable=False)


def upgrade() -> None:
    op.create_table(
        "proxies",
        sa.Column("id", sa.Integer, primary_key=True),
        _network_fk(),
        sa.Column("proxy_uid", sa.String(64), nullable=False),
        sa.Column("hostname", sa.String(255)),
        sa.Column("image_version", sa.String(64)),
        sa.Column("image_digest", sa.String(100)),
        sa.Column("config_version", sa.Integer),
        sa.Column("started_at", TS),
        sa.Column("uptime_s", sa.Float),
        sa.Column("spool_depth", sa.Integer),
        sa.Column("last_error", sa.Text),
        sa.Column("sent_at", TS),
        sa.Column("first_seen", TS, nullable=False),
        sa.Column("last_seen", TS, nullable=False),
        sa.UniqueConstraint("network_id", "proxy_uid", name="uq_proxy_network_uid"),
    )
    op.create_index("ix_proxies_last_seen", "proxies", ["last_seen"])
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer, primary_key=True),
        _network_fk(),
        sa.Column("proxy_id", sa.Integer, sa.ForeignKey("proxies.id", ondelete="CASCADE"), nullable=False),
        sa.Column("run_uid", sa.String(64), nullable=False),
        sa.Column("requested", sa.String(100), nullable=False),
        sa.Column("canonical", sa.String(100), nullable=False),
        sa.Column("provider", sa.String(64)),
        sa.Column("action_version", sa.String(32)),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("dry_run", sa.Boolean, nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("finished_at", TS, nullable=False),
        sa.Column("received_at", TS, nullable=False),
        *(sa.Column(name, sa.Integer, nullable=False) for name in (
            "total", "ok", "changed", "failed", "unreachable", "auth_failed", "timeout", "skipped", "blocked",
            "planned")),
        sa.Column("local_ok", sa.Boolean),
        sa.Column("local_detail", sa.Text),
        sa.Column("error", sa.Text),
        sa.Column("hosts_z", sa.LargeBinary, nullable=False),
        sa.UniqueConstraint("network_id", "run_uid", name="uq_run_network_uid"),
    )
    op.create_index("ix_runs_network_id_id", "runs", ["network_id", "id"])
    op.create_index("ix_runs_proxy_id", "runs", ["proxy_id"])
    op.create_index("ix_runs_received_at", "runs", ["received_at"])
    op.create_table(
        "proxy_last_runs",
        sa.Column("proxy_id", sa.Integer, sa.ForeignKey("proxies.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("canonical", sa.String(100), primary_key=True),
        sa.Column("requested", sa.String(100), nullable=False),
        sa.Column("run_uid", sa.String(64), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("finished_at", TS, nullable=False),
        *(sa.Column(name, sa.Integer, nullable=False) for name in ("total", "ok", "changed", "failures")),
        sa.Column("error", sa.Text),
    )
    op.create_table(
        "endpoint_status",
        sa.Column("network_id", sa.Integer, sa.ForeignKey("networks.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("host", sa.String(255), primary_key=True),
        sa.Column("canonical", sa.String(100), primary_key=True),
        sa.Column("store", sa.Integer),
        sa.Column("ip", sa.String(64)),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("changed", sa.Boolean, nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("duration_s", sa.Float),
        sa.Column("run_uid", sa.String(64), nullable=False),
        sa.Column("finished_at", TS, nullable=False),
    )
    op.create_index("ix_endpoint_status_network_store", "endpoint_status", ["network_id", "store"])
    op.create_index("ix_endpoint_status_finished_at", "endpoint_status", ["finished_at"])
    op.create_table(
        "people",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("username", sa.String(64), nullable=False, unique=True),
        sa.Column("password_hash", sa.String(200), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("failed_logins", sa.Integer, nullable=False),
        sa.Column("locked_until", TS),
        sa.Column("last_login_at", TS),
    )
    op.create_table(
        "web_sessions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("person_id", sa.Integer, sa.ForeignKey("people.id", ondelete="CASCADE"), nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
    )
    op.create_index("ix_web_sessions_person_id", "web_sessions", ["person_id"])
    op.create_index("ix_web_sessions_expires_at", "web_sessions", ["expires_at"])
    op.create_table(
        "admin_tokens",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("expires_at", TS),
        sa.Column("revoked_at", TS),
        sa.Column("last_used_at", TS),
    )
    op.execute("UPDATE tokens SET scopes = REPLACE(scopes, 'reports:write', 'report:write')")


def downgrade() -> None:
    op.execute("UPDATE tokens SET scopes = REPLACE(scopes, 'report:write', 'reports:write')")
    for table in ("admin_tokens", "web_sessions", "people", "endpoint_status", "proxy_last_runs", "runs", "proxies"):
        op.drop_table(table)
