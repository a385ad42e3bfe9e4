"""Engineer screen, "History" tab: policy versions and the event log, newest first; it refreshes
itself while shown."""

from __future__ import annotations

from typing import Any

import gradio as gr

from inspection.services import events, policies
from inspection.services.context import Pipeline
from ui.context import Permission, UiContext
from ui.engineer_common import all_stations_dropdown, auto_refresh, messages, station_filter, stations, wire_filter

POLICY_HEADERS = ["when (UTC)", "station", "version", "level", "pass below", "reject above", "audit", "by", "reason"]
EVENT_HEADERS = ["when (UTC)", "event", "station", "who", "item", "detail"]


def history_rows(app: Pipeline, station: str | None) -> tuple[list[list[Any]], list[list[Any]]]:
    """(policy versions, events), newest first."""
    policy_rows: list[list[Any]] = []
    names = [station] if station else stations(app)
    for name in names:
        for rec in policies.list_policies(app, station=name):
            p = rec.policy
            policy_rows.append(
                [
                    rec.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                    p.station,
                    p.version,
                    p.level.value,
                    p.pass_below,
                    p.reject_above,
                    p.audit_rate,
                    rec.created_by,
                    rec.reason,
                ]
            )
    policy_rows.sort(key=lambda r: (r[0], r[2]), reverse=True)
    event_rows: list[list[Any]] = [
        [
            e.at.strftime("%Y-%m-%d %H:%M:%S"),
            e.kind,
            e.station or "",
            e.actor or "",
            e.inspection_id if e.inspection_id is not None else "",
            _detail(e.detail),
        ]
        for e in events.list_events(app, station=station or None, limit=200)
    ]
    return policy_rows, event_rows


def _detail(detail: dict[str, Any] | None) -> str:
    if not detail:
        return ""
    old, new = detail.get("old"), detail.get("new")
    if isinstance(old, dict) and isinstance(new, dict):  # policy.changed: only what changed
        changes = [f"{k} {old.get(k)} → {v}" for k, v in new.items() if k != "version" and old.get(k) != v]
        why = f" · “{detail.get('reason', '')}”" if detail.get("reason") else ""
        return (f"v{old.get('version')} → v{new.get('version')}: " + ", ".join(changes) + why)[:200]
    text = ", ".join(f"{k}={v}" for k, v in detail.items() if k not in ("sha256",))
    return text[:200]


def build(ctx: UiContext) -> None:
    """The History tab (call inside a Tab)."""
    app = ctx.pipeline
    with gr.Row():
        station = all_stations_dropdown(ctx, elem_id="history-station")
        refresh = gr.Button("Refresh", size="lg", elem_id="history-refresh")
    gr.Markdown("### Policy versions (newest first)")
    policy_table = gr.Dataframe(headers=POLICY_HEADERS, interactive=False, elem_id="history-policies")
    gr.Markdown("### Events (newest first)")
    event_table = gr.Dataframe(
        headers=EVENT_HEADERS, interactive=False, elem_id="history-events", max_height=520, wrap=True
    )

    @messages
    def run(name: str | None, request: gr.Request) -> tuple[list[list[Any]], list[list[Any]]]:
        ctx.require(request, Permission.ENGINEER)
        return history_rows(app, station_filter(name))

    wire_filter(ctx, station, refresh, run, [station], [policy_table, event_table])
    auto_refresh(run, [station], [policy_table, event_table])
