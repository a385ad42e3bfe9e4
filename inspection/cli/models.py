"""`inspection models …`: the model registry and deployment (shadow, canary, promote, rollback, compare)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

import typer

from inspection.cli.common import default_by, echo_json, pct, station_arg
from inspection.cli.context import in_pipeline
from inspection.cli.ramp import app as ramp_app
from inspection.services import deploy
from inspection.services.context import Pipeline

T = TypeVar("T")

app = typer.Typer(no_args_is_help=True, help="Model registry and deployment: shadow, canary, promote.")


def _exit_code(exc: Exception) -> int:
    """A refused promotion is an answer (exit 1); an unknown model or a bad option is an error (2)."""
    return 1 if "refused" in str(exc) else 2


def _deploy(ctx: typer.Context, use_case: Callable[[Pipeline], T]) -> T:
    return in_pipeline(ctx, use_case, deploy.DeployError, code=_exit_code)


def _short_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in metrics.items() if not isinstance(v, dict | list)}
    held = metrics.get("heldout")
    if isinstance(held, dict):
        out["heldout"] = {k: held.get(k) for k in ("n", "auroc", "accuracy", "ece")}
    retrain = metrics.get("retrain")
    if isinstance(retrain, dict):
        out["verdict"] = retrain.get("verdict")
        out["data_hash"] = (retrain.get("data") or {}).get("hash")
    return out


def _model_line(m: deploy.ModelInfo) -> str:
    """Version, roles and AUROC: held-out AUROC of a retrained model, else its validation AUROC."""
    held = m.metrics.get("heldout")
    auroc = held.get("auroc") if isinstance(held, dict) else None
    auroc = auroc if auroc is not None else m.metrics.get("val_auroc")
    return f"{m.version:<32} {','.join(m.roles) or '-':<20} AUROC {auroc if auroc is not None else '-'}" + (
        f"  ({m.error})" if m.error else ""
    )


@app.command("list")
def models_list(ctx: typer.Context, as_json: bool = typer.Option(False, "--json")) -> None:
    """Model artifacts under models_dir with their deployment roles."""
    infos, state = in_pipeline(ctx, lambda pipe: (deploy.list_models(pipe), deploy.current_state(pipe)))
    if as_json:
        models = [{k: v for k, v in m.to_dict().items() if k != "training"} for m in infos]
        echo_json({"deployment": state.to_dict(), "models": models})
        return
    candidate = ""
    if state.candidate:
        fraction = f" ({state.canary_fraction:g})" if state.mode == "canary" else ""
        candidate = f"; {state.mode} {state.candidate}{fraction}"
    typer.echo(f"production {state.production}{candidate}")
    if not infos:
        typer.echo("no model artifacts found")
    for m in infos:
        typer.echo(_model_line(m))


@app.command("show")
def models_show(
    ctx: typer.Context, version: str = typer.Argument(...), as_json: bool = typer.Option(False, "--json")
) -> None:
    """One model: metrics, data hash, deployment history."""
    d = _deploy(ctx, lambda pipe: deploy.show_model(pipe, version=version)).to_dict()
    if as_json:
        echo_json(d)
        return
    for key in ("version", "path", "meta_version", "roles", "modified", "data_hash"):
        typer.echo(f"{key:>14}: {d[key]}")
    typer.echo(f"{'metrics':>14}: {json.dumps(_short_metrics(d['metrics']))}")
    for h in d["history"]:
        typer.echo(
            f"{'':>14}  {h['at']}  {h['actor']}: production {h['production']}, {h['mode']} "
            f"{h['candidate'] or ''} {h['reason']}"
        )


@app.command("shadow")
def models_shadow(
    ctx: typer.Context,
    version: str = typer.Argument(...),
    by: str = typer.Option("", "--by"),
    reason: str = typer.Option("", "--reason"),
) -> None:
    """The candidate scores every item from now on; its output is stored and compared, never used."""
    st = _deploy(ctx, lambda pipe: deploy.shadow(pipe, version=version, by=default_by(by), reason=reason))
    typer.echo(f"shadow: {st.candidate} scores every item; production stays {st.production}")


@app.command("canary")
def models_canary(
    ctx: typer.Context,
    version: str = typer.Argument(...),
    fraction: float = typer.Option(..., "--fraction", help="share of items the candidate decides, (0, 1)"),
    force: bool = typer.Option(False, "--force", help="run a candidate worse on held-out labels (needs --reason)"),
    by: str = typer.Option("", "--by"),
    reason: str = typer.Option("", "--reason"),
) -> None:
    """A fixed share of items (chosen by image hash) is decided by the candidate from now on; refused
    when the candidate is worse than production on held-out labels, unless --force with --reason."""
    st = _deploy(
        ctx,
        lambda pipe: deploy.canary(
            pipe, version=version, fraction=fraction, by=default_by(by), reason=reason, force=force
        ),
    )
    typer.echo(f"canary: {st.candidate} decides {st.canary_fraction:.1%} of items; production {st.production}")


@app.command("promote")
def models_promote(
    ctx: typer.Context,
    version: str = typer.Argument(...),
    force: bool = typer.Option(False, "--force", help="promote even if worse or unproven (needs --reason)"),
    by: str = typer.Option("", "--by"),
    reason: str = typer.Option("", "--reason"),
) -> None:
    """Blue-green: all traffic to VERSION; the previous production stays loaded for rollback."""
    res = _deploy(
        ctx, lambda pipe: deploy.promote(pipe, version=version, by=default_by(by), reason=reason, force=force)
    )
    forced = " — FORCED" if res.forced else ""
    typer.echo(f"promoted {res.state.production} (previous production {res.previous}){forced}")


@app.command("rollback")
def models_rollback(
    ctx: typer.Context, by: str = typer.Option("", "--by"), reason: str = typer.Option("", "--reason")
) -> None:
    """Withdraw a running shadow/canary candidate, or else go back at once to the last earlier production
    model promoted without force (never to one that got there only by --force)."""
    st = _deploy(ctx, lambda pipe: deploy.rollback(pipe, by=default_by(by), reason=reason))
    typer.echo(f"rolled back: production {st.production}, no candidate")


def _print_comparison(cmp: deploy.Comparison) -> None:
    lo, hi = cmp.agreement_interval
    typer.echo(
        f"{cmp.version} vs production on {cmp.n} items: agreement {pct(cmp.agreement)} "
        f"[{pct(lo)}, {pct(hi)}], kappa {cmp.kappa if cmp.kappa is None else round(cmp.kappa, 3)}, "
        f"score correlation {cmp.correlation if cmp.correlation is None else round(cmp.correlation, 3)}"
    )
    if cmp.n_labelled:
        typer.echo(
            f"on {cmp.n_labelled} human-labelled items: candidate accuracy "
            f"{pct(cmp.candidate_accuracy)}, production {pct(cmp.production_accuracy)}"
        )
    typer.echo(f"{cmp.disagreements_total} disagreements" + (":" if cmp.disagreements else ""))
    for d in cmp.disagreements:
        typer.echo(
            f"  #{d.inspection_id:<7} candidate {d.candidate_score:.3f}  production "
            f"{d.production_score:.3f}  human {d.human_label or '-':<7} {d.link}  {d.image_path}"
        )


@app.command("compare")
def models_compare(
    ctx: typer.Context,
    version: str = typer.Argument(...),
    station: str | None = typer.Option(None, "--station"),
    limit: int = typer.Option(20, "--limit", min=0, help="disagreements to list"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Production vs VERSION on the items both scored (shadow or canary)."""
    st = station_arg(station)
    cmp = _deploy(ctx, lambda pipe: deploy.compare(pipe, version=version, limit=limit, station=st))
    if as_json:
        echo_json(cmp.to_dict())
    elif cmp.n == 0:
        typer.echo(f"{cmp.version}: no items scored by both yet (start shadow or canary)")
    else:
        _print_comparison(cmp)


app.add_typer(ramp_app, name="ramp")  # `inspection models ramp …` (cli/ramp.py)
