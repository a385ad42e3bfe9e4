"""`inspection monitor report|rules|reference|evaluate|restore`: how the line is doing, the alarm
rules, the station's reference window, an evaluation now, and restoring a level the interlock dropped."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from inspection.cli.common import default_by, echo_json, parse_when, pct, station_arg
from inspection.cli.context import in_pipeline
from inspection.core.domain import PolicyError
from inspection.services import errors, monitoring

app = typer.Typer(no_args_is_help=True, help="Monitoring: drift, alarms, the interlock.")
rules_app = typer.Typer(no_args_is_help=True, help="Show or set a station's alarm rules.")
app.add_typer(rules_app, name="rules")

KNOWN = (errors.InputError, errors.NotFound, PolicyError)


def _fmt(x: float | None, spec: str = ".3g") -> str:
    return "-" if x is None else format(x, spec)


def _estimate(name: str, e: monitoring.EstimateOut | None) -> str:
    if e is None or e.rate is None:
        return f"{name}: no data"
    return f"{name}: {pct(e.rate)} (95 % {pct(e.low)}–{pct(e.high)}, n={e.n})"


def _print_report(r: monitoring.MonitorReport) -> None:
    typer.echo(f"station: {r.station or 'all'}   items since {r.since:%Y-%m-%d %H:%M}: {r.n_items}")
    typer.echo(f"reference: {r.reference_source or '-'}")
    if r.interlock is not None:
        il = r.interlock
        state = f"DEMOTED {il.demoted_from} -> {il.demoted_to} by alarm #{il.alarm_id}" if il.demoted_to else "ok"
        typer.echo(f"interlock: {'on' if il.enabled else 'off'}; {state}")
    busy = [p for p in r.series if p.n]
    if busy:
        last = busy[-1]
        typer.echo(
            f"latest bucket {last.t:%H:%M}: {last.n} items, latency p50 {_fmt(last.latency_p50_ms)} ms "
            f"p95 {_fmt(last.latency_p95_ms)} ms, to people {pct(last.to_people_share)}, "
            f"brightness {_fmt(last.brightness)}"
        )
    typer.echo(_estimate("audited escape", r.escape_audited))
    typer.echo(_estimate("label-free escape", r.escape_label_free))
    typer.echo(_estimate("model vs inspector disagreement", r.disagreement))
    typer.echo(f"ECE on audits: {_fmt(r.ece_audit)}")
    for d in r.drift:
        flag = "BREACH" if d.breached else (d.skipped or "ok")
        typer.echo(
            f"  {d.station or '':<12} {d.rule or d.metric:<26} stat {_fmt(d.statistic):>8}  "
            f"p {_fmt(d.p_value):>9}  limit {_fmt(d.threshold):>8}  n {d.n_window:>4}  {flag}"
        )
    open_alarms = [a for a in r.alarms if a.cleared_at is None]
    typer.echo(f"alarms: {len(open_alarms)} open, {len(r.alarms) - len(open_alarms)} cleared in the span")
    for a in r.alarms:
        state = "open" if a.cleared_at is None else f"cleared {a.cleared_at:%Y-%m-%d %H:%M}"
        typer.echo(f"  #{a.id} {a.station} {a.rule} ({a.severity}) opened {a.opened_at:%Y-%m-%d %H:%M}, {state}")


@app.command("report")
def report_cmd(
    ctx: typer.Context,
    station: str | None = typer.Option(None, "--station", help="one station (default: all)"),
    since: str | None = typer.Option(None, "--since", help="ISO date or date-time (default: the last 24 h)"),
    model: str | None = typer.Option(None, "--model", help="only items this model version decided"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Time series, drift, escape estimates, alarms and the interlock (the monitoring tab's data)."""
    st, when = station_arg(station), parse_when(since, "--since")
    r = in_pipeline(ctx, lambda pipe: monitoring.monitor_report(pipe, station=st, since=when, model=model), *KNOWN)
    if as_json:
        echo_json(r.model_dump(mode="json"))
    else:
        _print_report(r)


@rules_app.command("show")
def rules_show(
    ctx: typer.Context, station: str = typer.Option(..., "--station"), as_json: bool = typer.Option(False, "--json")
) -> None:
    """The station's alarm rules in force (version 0: the defaults)."""
    out = in_pipeline(ctx, lambda pipe: monitoring.get_rules(pipe, station=station), *KNOWN)
    if as_json:
        echo_json(out.model_dump(mode="json"))
        return
    who = f" by {out.created_by} at {out.created_at}: {out.reason}" if out.version else " (default rules)"
    typer.echo(f"{out.station} rules v{out.version}{who}")
    typer.echo(f"interlock: {out.rules.get('interlock')} (null: on at full only)")
    typer.echo(f"false-alarm budget: {out.false_alarm_per_100k:g} per 100,000 items (union bound)")
    for r in out.rules["rules"]:
        limit = f"threshold {r['threshold']}" if "threshold" in r else f"{r['false_alarm_per_100k']}/100k"
        demote = " demote" if r.get("demote") else ""
        typer.echo(f"  {r['name']:<26} {r['metric']:<24} window {r['window']:>4} step {r['step']:>3} {limit}{demote}")


def _read_rules(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise errors.InputError(f"cannot read rules from {path}: {exc}") from None
    if not isinstance(data, dict):
        raise errors.InputError(f"{path}: expected a JSON object with 'rules'")
    inner = data.get("rules")
    return inner if isinstance(inner, dict) else data  # `rules show --json` output is accepted too


@rules_app.command("set")
def rules_set(
    ctx: typer.Context,
    station: str = typer.Option(..., "--station"),
    file: Path = typer.Option(..., "--file", help='JSON: {"rules": [...], "interlock": true|false|null}'),
    reason: str = typer.Option(..., "--reason"),
    by: str = typer.Option("", "--by", help="who (default: your login name)"),
) -> None:
    """Store a new version of the station's alarm rules."""
    out = in_pipeline(
        ctx,
        lambda pipe: monitoring.set_rules(
            pipe, station=station, rules=_read_rules(file), by=default_by(by), reason=reason
        ),
        *KNOWN,
    )
    typer.echo(
        f"{out.station} rules v{out.version}: {len(out.rules['rules'])} rules, interlock {out.rules['interlock']}"
    )
    for change in out.changes:  # what this version changed (the same diff the Monitoring tab shows)
        typer.echo(f"  {change}")


@app.command("reference")
def reference_cmd(
    ctx: typer.Context,
    station: str = typer.Option(..., "--station"),
    first: int | None = typer.Option(None, "--first", help="the first N items (at or after --since)"),
    since: str | None = typer.Option(None, "--since"),
    until: str | None = typer.Option(None, "--until", help="with --since: every item in the range"),
    reason: str = typer.Option("reference window", "--reason"),
    by: str = typer.Option("", "--by"),
) -> None:
    """Make the station's own items its reference: --first N [--since D], or --since D --until E."""
    s, u = parse_when(since, "--since"), parse_when(until, "--until")
    out = in_pipeline(
        ctx,
        lambda pipe: monitoring.set_reference_window(
            pipe, station=station, by=default_by(by), reason=reason, first=first, since=s, until=u
        ),
        *KNOWN,
    )
    typer.echo(f"{out.station} reference v{out.version}: {out.n} items ({out.source})")


@app.command("evaluate")
def evaluate_cmd(ctx: typer.Context, station: str = typer.Option(..., "--station")) -> None:
    """Make the looks due now (the server does this every few seconds) and print what changed."""
    changes = in_pipeline(ctx, lambda pipe: monitoring.evaluate_station(pipe, station=station), *KNOWN)
    if not changes:
        typer.echo(f"{station}: no alarm changed")
    for c in changes:
        demoted = f"; interlock dropped the station to {c.demoted_to.value}" if c.demoted_to else ""
        typer.echo(f"alarm #{c.alarm.id} {c.kind}: {c.alarm.rule} ({c.alarm.severity}){demoted}")


@app.command("restore")
def restore_cmd(
    ctx: typer.Context,
    station: str = typer.Option(..., "--station"),
    level: str = typer.Option(..., "--level", help="human_only|shadow|ai_assist|partial|full"),
    reason: str = typer.Option(..., "--reason"),
    by: str = typer.Option("", "--by"),
) -> None:
    """Restore the automation level after a demotion (deliberately: a new policy version)."""
    p = in_pipeline(
        ctx,
        lambda pipe: monitoring.restore_level(pipe, station=station, level=level, by=default_by(by), reason=reason),
        *KNOWN,
    )
    typer.echo(f"{p.station} v{p.version}: {p.level.value}")
