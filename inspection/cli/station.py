"""`inspection station show|set|recalibrate|history|highlight`: a station's setup (localisation, gate
overrides, score recalibration), versioned with who and why like the policy, and how its items open on
the review screen (highlight on or off)."""

from __future__ import annotations

from typing import Any

import typer

from inspection.cli.common import default_by, echo_json
from inspection.cli.context import in_pipeline
from inspection.services import errors, review, stations

app = typer.Typer(no_args_is_help=True, help="Show or change a station's setup: localisation, gate, calibration.")


def _num(text: str) -> float | None:
    return float(text) if text.strip() else None


def parse_gate_option(values: list[str]) -> dict[str, Any]:
    """`metric:lo:hi` (either side may be empty), or `metric:` to remove the override."""
    out: dict[str, Any] = {}
    for value in values:
        parts = value.split(":")
        if len(parts) == 2 and not parts[1].strip():
            out[parts[0].strip()] = None
            continue
        if len(parts) != 3:
            raise errors.InputError(f"--gate {value!r}: write metric:lo:hi (a side may be empty) or metric: to remove")
        try:
            out[parts[0].strip()] = {"lo": _num(parts[1]), "hi": _num(parts[2])}
        except ValueError:
            raise errors.InputError(f"--gate {value!r}: lo and hi must be numbers") from None
    return out


def _roi(text: str | None) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise errors.InputError(f"--roi {text!r}: write x,y,w,h as fractions of the frame") from None


def setup_line(s: stations.StationSetup) -> str:
    loc = s.localisation.mode.value
    if s.localisation.roi:
        loc += " (" + ", ".join(f"{v:.3f}" for v in s.localisation.roi) + ")"
    gate = ", ".join(f"{k} {_side(r.lo)}..{_side(r.hi)}" for k, r in sorted(s.gate.items())) or "model's ranges"
    cal = s.calibration
    scores = (
        "raw scores"
        if cal is None
        else f"temperature {cal.temperature:.3f} for {cal.model_version} (ECE {_side(cal.ece_before)} -> "
        f"{_side(cal.ece_after)}, {cal.n_labels} blind labels)"
    )
    return f"{s.station} v{s.version}: localisation {loc}; gate {gate}; {scores}"


def _side(v: float | None) -> str:
    return "" if v is None else f"{v:.3g}"


@app.command("show")
def station_show(
    ctx: typer.Context,
    station: str = typer.Option(..., "--station"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """The setup in force at a station (version 0: never configured)."""
    setup = in_pipeline(ctx, lambda pipe: stations.get_setup(pipe, station=station), errors.InputError)
    if as_json:
        echo_json(stations.setup_to_dict(setup))
    else:
        typer.echo(setup_line(setup))


@app.command("set")
def station_set(
    ctx: typer.Context,
    station: str = typer.Option(..., "--station"),
    by: str = typer.Option(..., "--by", help="who makes the change"),
    reason: str = typer.Option(..., "--reason", help="why"),
    mode: str | None = typer.Option(None, "--localisation", help="auto|roi|frame"),
    roi: str | None = typer.Option(None, "--roi", help="x,y,w,h as fractions of the frame (implies roi)"),
    gate: list[str] = typer.Option([], "--gate", help="metric:lo:hi override (a side may be empty); metric: removes"),
    reset_gate: bool = typer.Option(False, "--reset-gate", help="drop every gate override not given now"),
    clear_calibration: bool = typer.Option(False, "--clear-calibration", help="back to the model's raw scores"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Store a new setup version (what is not given is kept)."""
    new = in_pipeline(
        ctx,
        lambda pipe: stations.set_setup(
            pipe, station=station, by=by, reason=reason, mode=mode, roi=_roi(roi), gate=parse_gate_option(gate),
            replace_gate=reset_gate, clear_calibration=clear_calibration,
        ),
        errors.InputError,
    )  # fmt: skip
    if as_json:
        echo_json(stations.setup_to_dict(new))
    else:
        typer.echo(setup_line(new))


@app.command("recalibrate")
def station_recalibrate(
    ctx: typer.Context,
    station: str = typer.Option(..., "--station"),
    by: str = typer.Option(..., "--by", help="who recalibrates"),
    reason: str = typer.Option("", "--reason", help="why (default: recalibration from blind labels)"),
    model: str | None = typer.Option(None, "--model", help="model version (default: production)"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Fit a temperature on the station's blind labels; refused (exit 1) when there are too few."""
    out = in_pipeline(
        ctx,
        lambda pipe: stations.recalibrate(pipe, station=station, by=by, reason=reason, model_version=model),
        errors.InputError,
        code=lambda exc: 1 if isinstance(exc, stations.RecalibrationRefused) else 2,
    )
    if as_json:
        echo_json(stations.setup_to_dict(out.setup) | {"n_blind": out.n_blind, "n_not_blind": out.n_skipped})
    else:
        typer.echo(setup_line(out.setup))
        typer.echo(f"{out.n_skipped} labels left out: the inspector saw the model's output")


@app.command("history")
def station_history(
    ctx: typer.Context,
    station: str = typer.Option(..., "--station"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Every setup version of a station with who, when and why."""
    records = in_pipeline(ctx, lambda pipe: stations.setup_history(pipe, station=station), errors.InputError)
    if as_json:
        echo_json([
            stations.setup_to_dict(r.setup)
            | {"created_by": r.created_by, "created_at": r.created_at.isoformat(), "reason": r.reason, "old": r.old}
            for r in records
        ])  # fmt: skip
        return
    if not records:
        typer.echo(f"{station}: never configured (automatic localisation, the model's ranges, raw scores)")
    for r in records:
        typer.echo(f"{setup_line(r.setup)}  — {r.created_by} {r.created_at.isoformat()}: {r.reason}")


@app.command("highlight")
def station_highlight(
    ctx: typer.Context,
    station: str = typer.Argument(..., help="the station"),
    state: str = typer.Argument(..., metavar="on|off", help="open its items with the model's outlines or not"),
    reason: str = typer.Option(..., "--reason", help="why (stored in the event with who)"),
    by: str = typer.Option("", "--by", help="who makes the change (default: your user name)"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """The review screen's highlight default at a station (inspectors still toggle it per item)."""
    value = state.strip().lower()
    if value not in ("on", "off"):
        raise typer.BadParameter(f"write on or off, not {state!r}", param_hint="STATE")
    on = value == "on"
    old = in_pipeline(
        ctx,
        lambda pipe: review.set_highlight_default(pipe, station=station, on=on, by=default_by(by), reason=reason),
        errors.InputError,
    )
    if as_json:
        echo_json({"station": station, "highlight": on, "old": old, "reason": reason.strip()})
    else:
        was = "" if old == on else f" (was {'on' if old else 'off'})"
        typer.echo(f"{station}: highlight {value}{was} when an item opens on the review screen")
