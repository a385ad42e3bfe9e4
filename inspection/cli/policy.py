"""`inspection policy show|set`: a station's automation policy and its history."""

from __future__ import annotations

from typing import Any

import typer

from inspection.cli.common import echo_json
from inspection.cli.context import in_pipeline
from inspection.core.domain import Policy, PolicyError
from inspection.services import errors, policies
from inspection.services.context import Pipeline

app = typer.Typer(no_args_is_help=True, help="Show or change a station's automation policy.")


def _payload(pipe: Pipeline, station: str | None) -> list[dict[str, Any]]:
    """The history of one station (or the current policy of every configured station), as dicts."""
    if station is None:
        records = policies.list_policies(pipe)
    else:
        current = policies.get_policy(pipe, station=station)
        records = policies.list_policies(pipe, station=station)
        if not records:  # never configured: show the safe default it runs under
            return [policies.policy_to_dict(current) | {"note": "default: never configured"}]
    return [
        policies.policy_to_dict(r.policy)
        | {"created_by": r.created_by, "created_at": r.created_at.isoformat(), "reason": r.reason, "old": r.old}
        for r in records
    ]


def _policy_line(p: Policy) -> str:
    return (
        f"{p.station} v{p.version}: {p.level.value} pass_below={p.pass_below} "
        f"reject_above={p.reject_above} audit_rate={p.audit_rate}"
    )


@app.command("show")
def policy_show(
    ctx: typer.Context,
    station: str | None = typer.Option(None, "--station", help="one station (default: all configured)"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Current policy of a station (with its history), or of every configured station."""
    payload = in_pipeline(ctx, lambda pipe: _payload(pipe, station), errors.InputError)
    if as_json:
        echo_json(payload if station is None else {"current": payload[-1], "history": payload})
        return
    if not payload:
        typer.echo("no station has a policy yet (unconfigured stations run human_only)")
    for p in payload:
        typer.echo(
            f"{p['station']} v{p['version']}: {p['level']} pass_below={p['pass_below']} "
            f"reject_above={p['reject_above']} audit_rate={p['audit_rate']}"
            + (f"  — {p['created_by']} {p['created_at']}: {p['reason']}" if "created_by" in p else f"  ({p['note']})")
        )


@app.command("set")
def policy_set(
    ctx: typer.Context,
    station: str = typer.Option(..., "--station"),
    by: str = typer.Option(..., "--by", help="who makes the change"),
    reason: str = typer.Option(..., "--reason", help="why"),
    level: str | None = typer.Option(None, "--level", help="human_only|shadow|ai_assist|partial|full"),
    pass_below: float | None = typer.Option(None, "--pass-below"),
    reject_above: float | None = typer.Option(None, "--reject-above"),
    audit_rate: float | None = typer.Option(None, "--audit-rate"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Store a new policy version (values not given are kept)."""
    new = in_pipeline(
        ctx,
        lambda pipe: policies.set_policy(
            pipe, station=station, by=by, reason=reason, level=level,
            pass_below=pass_below, reject_above=reject_above, audit_rate=audit_rate,
        ),
        PolicyError,
    )
    if as_json:
        echo_json(policies.policy_to_dict(new))
    else:
        typer.echo(_policy_line(new))
