"""`inspection qc`: quality control of the inspectors — gold items (add, remove, list), the stations'
QC rates, the report (accuracy on gold, agreement, drift across the shift) and adjudication."""

from __future__ import annotations

from dataclasses import asdict

import typer

from inspection.cli.common import echo_json, fail, parse_when
from inspection.cli.context import in_pipeline
from inspection.services import errors, quality

app = typer.Typer(no_args_is_help=True, help="Quality control of the inspectors: gold items, agreement, adjudication.")
gold_app = typer.Typer(no_args_is_help=True, help="Items with a known label, planted blind in inspectors' queues.")
app.add_typer(gold_app, name="gold")

KNOWN = (errors.InputError, errors.NotFound, errors.QueueConflict)


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x * 100:.1f} %"


@gold_app.command("add")
def gold_add(
    ctx: typer.Context,
    inspection_id: int = typer.Option(..., "--id", help="the stored item"),
    by: str = typer.Option(..., "--by", help="who vouches for the label"),
    reason: str = typer.Option(..., "--reason", help="why the label is certain"),
    label: str | None = typer.Option(None, "--label", help="scratch|ok (default: the item's final label)"),
) -> None:
    """Mark a stored item as gold."""
    g = in_pipeline(ctx, lambda p: quality.mark_gold(p, inspection_id=inspection_id, by=by, reason=reason,
                                                     label=label), *KNOWN)  # fmt: skip
    typer.echo(f"gold item #{g.inspection_id} ({g.station}): {g.label}")


@gold_app.command("remove")
def gold_remove(
    ctx: typer.Context,
    inspection_id: int = typer.Option(..., "--id"),
    by: str = typer.Option(..., "--by"),
) -> None:
    """Stop planting an item (answers already given still count)."""
    in_pipeline(ctx, lambda p: quality.unmark_gold(p, inspection_id=inspection_id, by=by), *KNOWN)
    typer.echo(f"#{inspection_id} is no longer a gold item")


@gold_app.command("list")
def gold_list(ctx: typer.Context, as_json: bool = typer.Option(False, "--json")) -> None:
    """The active gold items."""
    items = in_pipeline(ctx, quality.list_gold, *KNOWN)
    if as_json:
        echo_json([asdict(g) for g in items])
        return
    if not items:
        typer.echo("no gold items")
    for g in items:
        typer.echo(f"#{g.inspection_id} {g.station} {g.label} — {g.created_by} {g.created_at.isoformat()}: {g.reason}")


@app.command("set")
def qc_set(
    ctx: typer.Context,
    station: str = typer.Option(..., "--station"),
    by: str = typer.Option(..., "--by"),
    reason: str = typer.Option(..., "--reason"),
    gold_rate: float | None = typer.Option(None, "--gold-rate", help="0-1; omitted: the server setting"),
    double_rate: float | None = typer.Option(None, "--double-rate", help="0-1; omitted: the server setting"),
) -> None:
    """A station's own QC rates."""
    r = in_pipeline(ctx, lambda p: quality.set_rates(p, station=station, gold_rate=gold_rate, double_rate=double_rate,
                                                     by=by, reason=reason), *KNOWN)  # fmt: skip
    typer.echo(f"{r.station}: gold rate {_pct(r.gold_rate)}, double-label rate {_pct(r.double_rate)}")


@app.command("report")
def qc_report(
    ctx: typer.Context,
    station: str | None = typer.Option(None, "--station"),
    since: str | None = typer.Option(None, "--since", help="ISO date or time (UTC when no zone)"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Accuracy on gold (95 % interval, misses), kappa per pair and overall, first vs last hour."""
    when = parse_when(since, "--since")
    rep = in_pipeline(ctx, lambda p: quality.qc_report(p, station=station, since=when), *KNOWN)
    if as_json:
        echo_json(rep.to_dict())
        return
    typer.echo(f"gold items {rep.gold_items}; double-labelled {rep.double_items}, "
               f"{rep.pending_adjudication} waiting for adjudication")  # fmt: skip
    for q in rep.inspectors:
        g, f, la = q.gold, q.shift.first_hour, q.shift.last_hour
        acc = f"{g.events}/{g.trials} = {_pct(None if g.trials == 0 else g.rate)} [{_pct(g.low)}, {_pct(g.high)}]"
        typer.echo(f"{q.inspector}: {q.labels} labels; gold {acc}; s/item first hour {f.seconds_median}, "
                   f"last hour {la.seconds_median}")  # fmt: skip
        for m in q.misses:
            typer.echo(f"  missed gold #{m.gold_item}: answered {m.answer}, truth {m.truth} ({m.at.isoformat()})")
    for p in [*rep.pairs, rep.overall]:
        kappa = "n/a" if p.kappa is None else f"{p.kappa:.3f}"
        typer.echo(f"{p.a} vs {p.b}: {p.agreed}/{p.n} agree, kappa {kappa}")


@app.command("adjudicate")
def qc_adjudicate(
    ctx: typer.Context,
    inspection_id: int | None = typer.Option(None, "--id", help="omitted: list what waits"),
    label: str | None = typer.Option(None, "--label", help="scratch|ok"),
    by: str | None = typer.Option(None, "--by"),
    reason: str = typer.Option("", "--reason"),
) -> None:
    """List the disagreements waiting for an engineer, or decide one (its label of record from now on)."""
    if inspection_id is None:
        for it in in_pipeline(ctx, quality.adjudication_queue, *KNOWN):
            labels = ", ".join(f"{who}: {lab}" for who, lab in it.labels)
            typer.echo(f"#{it.inspection_id} {it.station} — {labels}")
        return
    if label is None or by is None:
        raise fail("--label and --by are needed to adjudicate")
    lab = in_pipeline(ctx, lambda p: quality.adjudicate(p, inspection_id=inspection_id, label=label, by=by,
                                                        reason=reason), *KNOWN)  # fmt: skip
    typer.echo(f"#{inspection_id} adjudicated {lab.value} by {by}")
