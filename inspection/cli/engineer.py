"""Engineers' commands: thresholds, retrain, models (registry and deployment), export.

Thin: parse, build the Pipeline, call one use case, format. Known errors print one line and exit 2;
a refusal with an answer (no threshold recommendation, promotion refused) exits 1. torch is imported
only by commands that load models.
"""

from __future__ import annotations

import getpass
import json
import math
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer

from inspection.config import Settings


def fail(message: str, code: int = 2) -> typer.Exit:
    typer.secho(f"error: {message}", err=True, fg="red")
    return typer.Exit(code)


def _json(obj: Any) -> str:
    def clean(v: Any) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {str(k): clean(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [clean(x) for x in v]
        if isinstance(v, datetime | Path):
            return str(v)
        return v

    return json.dumps(clean(obj), indent=None)


def parse_when(value: str | None, option: str) -> datetime | None:
    """ISO date or date-time; a value without a zone is UTC."""
    if value is None or not value.strip():
        return None
    try:
        dt = datetime.fromisoformat(value.strip())
    except ValueError:
        raise fail(
            f"{option} must be an ISO date such as 2025-03-01 or 2025-03-01T08:00, got {value!r}"
        ) from None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt


def _default_by() -> str:
    try:
        return getpass.getuser() or "cli"
    except Exception:
        return "cli"


def _pct(x: float | None) -> str:
    return "-" if x is None or not math.isfinite(x) else f"{x * 100:.3g} %"


def register(app: typer.Typer, *, scorer_factory: Callable[[Settings], Any] | None = None) -> None:
    """Add the commands. `scorer_factory(settings) -> ScorerFactory` swaps the models (tests)."""

    def pipeline() -> Any:
        from inspection.services import context

        settings = Settings()
        factory = scorer_factory(settings) if scorer_factory is not None else None
        try:
            return context.Pipeline.create(settings, scorer_factory=factory)
        except Exception as exc:  # unreachable database, bad URL: one line, not a traceback
            raise fail(f"cannot open the database: {type(exc).__name__}: {exc}") from None

    def station_arg(station: str | None) -> str | None:
        from inspection.services import errors, validation

        if station is None:
            return None
        try:
            return validation.validate_station(station)
        except errors.InputError as exc:
            raise fail(str(exc)) from None

    thresholds = typer.Typer(no_args_is_help=True, help="Threshold tuning and calibration on stored labels.")
    models = typer.Typer(no_args_is_help=True, help="Model registry and deployment: shadow, canary, promote.")
    app.add_typer(thresholds, name="thresholds")
    app.add_typer(models, name="models")

    # -- thresholds --------------------------------------------------------------------------

    @thresholds.command("suggest")
    def thresholds_suggest(
        station: str | None = typer.Option(None, "--station", help="station (default: all stations)"),
        max_escape: float = typer.Option(..., "--max-escape", help="escape-rate bound per phone, e.g. 0.001"),
        max_false_reject: float = typer.Option(0.01, "--max-false-reject", help="false-reject bound"),
        cost_escape: float | None = typer.Option(None, "--cost-escape", help="cost of one escape"),
        cost_false_reject: float | None = typer.Option(None, "--cost-false-reject"),
        cost_review_minute: float | None = typer.Option(None, "--cost-review-minute"),
        seconds_per_review: float = typer.Option(4.0, "--seconds-per-review"),
        items_per_hour: float = typer.Option(600.0, "--items-per-hour"),
        model_version: str | None = typer.Option(None, "--model-version", help="default: production"),
        as_json: bool = typer.Option(False, "--json"),
        plot: Path | None = typer.Option(None, "--plot", help="write a PNG of automation vs escape bound"),
    ) -> None:
        """Recommend pass_below / reject_above from labelled history, or say how many labels are missing."""
        from inspection.services import tuning

        costs = (cost_escape, cost_false_reject, cost_review_minute)
        if any(c is not None for c in costs) and any(c is None for c in costs):
            raise fail("cost mode needs --cost-escape, --cost-false-reject and --cost-review-minute together")
        st = station_arg(station)
        with pipeline() as ctx:
            try:
                result = tuning.suggest_thresholds(
                    ctx,
                    station=st,
                    max_escape=max_escape,
                    max_false_reject=max_false_reject,
                    cost_escape=cost_escape,
                    cost_false_reject=cost_false_reject,
                    cost_review_minute=cost_review_minute,
                    seconds_per_review=seconds_per_review,
                    items_per_hour=items_per_hour,
                    model_version=model_version,
                    curve=plot is not None,
                )
            except ValueError as exc:
                raise fail(str(exc)) from None
        if plot is not None:
            tuning.plot_suggestion(result, plot)
        s = result.suggestion
        if as_json:
            typer.echo(_json(result.to_dict() | ({"plot": str(plot)} if plot else {})))
        else:
            for w in result.stats.warnings:
                typer.secho(f"warning: {w}", err=True, fg="yellow")
            head = f"{st or 'all stations'} · model {result.model_version} · {result.stats.n} labelled phones"
            typer.echo(f"{head} ({result.stats.n_audit} audit, {result.stats.n_scratch} scratched)")
            if s.ok:
                typer.echo(
                    f"suggest: partial, pass_below {s.pass_below:.6g}, reject_above {s.reject_above:.6g}"
                )
            else:
                typer.echo(
                    f"no recommendation ({s.labels_needed} more labels needed)"
                    if s.labels_needed
                    else "no recommendation"
                )
            typer.echo(s.reason)
            if plot:
                typer.echo(f"plot: {plot}")
        if not s.ok:
            raise typer.Exit(1)

    @thresholds.command("calibration")
    def thresholds_calibration(
        model_version: str | None = typer.Option(None, "--model-version", help="default: every version"),
        station: str | None = typer.Option(None, "--station"),
        bins: int = typer.Option(10, "--bins", min=2, max=100),
        as_json: bool = typer.Option(False, "--json"),
        plot: Path | None = typer.Option(None, "--plot", help="write a reliability diagram PNG"),
    ) -> None:
        """Calibration of each model version on stored human labels: ECE and reliability bins."""
        from inspection.services import tuning

        st = station_arg(station)
        with pipeline() as ctx:
            results = tuning.calibration(ctx, model_version=model_version, station=st, bins=bins)
        if plot is not None:
            tuning.plot_calibration(results, plot)
        if as_json:
            typer.echo(_json({"models": [r.to_dict() for r in results], "plot": str(plot) if plot else None}))
            return
        if not results:
            typer.echo("no labelled items with a model score yet")
        for r in results:
            ece = "-" if r.ece is None else f"{r.ece:.4f}"
            typer.echo(f"{r.model_version:<32} n={r.n:<7} ECE {ece}")
        if plot:
            typer.echo(f"plot: {plot}")

    # -- retrain -----------------------------------------------------------------------------

    @app.command("retrain")
    def retrain_cmd(
        station: str | None = typer.Option(None, "--station"),
        since: str | None = typer.Option(
            None, "--since", help="only labels of items received since (ISO date)"
        ),
        base_data: Path | None = typer.Option(None, "--base-data", help="an ImageFolder to train on as well"),
        epochs: int = typer.Option(12, "--epochs", min=1),
        min_per_class: int = typer.Option(20, "--min-per-class", min=2, help="labels needed per class"),
        by: str = typer.Option("", "--by", help="who retrains (default: your user name)"),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Train a candidate from stored labels, compare with production on held-out labels, register."""
        from inspection.services import retrain

        st = station_arg(station)
        when = parse_when(since, "--since")
        with pipeline() as ctx:
            try:
                result = retrain.retrain(
                    ctx,
                    by=by or _default_by(),
                    station=st,
                    since=when,
                    base_data=base_data,
                    epochs=epochs,
                    min_per_class=min_per_class,
                    log=lambda m: typer.echo(m, err=True),
                )
            except retrain.NotEnoughLabels as exc:
                raise fail(str(exc), 1) from None
            except ValueError as exc:  # DatasetError, TrainingError, bad options
                raise fail(str(exc)) from None
        if as_json:
            typer.echo(_json(result.to_dict()))
            return
        c, p = result.candidate, result.production
        typer.echo(f"registered {result.version} at {result.path} in {result.seconds:.0f} s")
        typer.echo(
            f"  data: {result.n_train} train + {result.n_test} held-out stored labels"
            + (f" + {result.n_base} base images" if result.n_base else "")
            + f"; hash {result.data_hash[:16]}"
        )
        typer.echo(
            f"  held-out candidate : AUROC {c.get('auroc', '-')}  accuracy {c.get('accuracy', '-')}  "
            f"ECE {c.get('ece', '-')}"
        )
        if p is not None:
            typer.echo(
                f"  held-out production ({p['version']}): AUROC {p.get('auroc', '-')}  "
                f"accuracy {p.get('accuracy', '-')}  ECE {p.get('ece', '-')}"
            )
        typer.echo(f"  verdict: {result.verdict}")
        for note in result.notes:
            typer.echo(f"  note: {note}")

    # -- models ------------------------------------------------------------------------------

    def deploy_errors(fn: Callable[[], Any]) -> Any:
        from inspection.services.deploy import DeployError

        try:
            return fn()
        except DeployError as exc:
            raise fail(str(exc), 1 if "refused" in str(exc) else 2) from None

    @models.command("list")
    def models_list(as_json: bool = typer.Option(False, "--json")) -> None:
        """Model artifacts under models_dir with their deployment roles."""
        from inspection.services import deploy

        with pipeline() as ctx:
            infos = deploy.list_models(ctx)
            state = deploy.current_state(ctx)
        if as_json:
            typer.echo(
                _json(
                    {
                        "deployment": state.to_dict(),
                        "models": [{k: v for k, v in m.to_dict().items() if k != "training"} for m in infos],
                    }
                )
            )
            return
        typer.echo(
            f"production {state.production}"
            + (
                f"; {state.mode} {state.candidate}"
                + (f" ({state.canary_fraction:g})" if state.mode == "canary" else "")
                if state.candidate
                else ""
            )
        )
        if not infos:
            typer.echo("no model artifacts found")
        for m in infos:
            auroc = (
                m.metrics.get("heldout", {}).get("auroc")
                if isinstance(m.metrics.get("heldout"), dict)
                else None
            )
            auroc = auroc if auroc is not None else m.metrics.get("val_auroc")
            typer.echo(
                f"{m.version:<32} {','.join(m.roles) or '-':<20} AUROC {auroc if auroc is not None else '-'}"
                + (f"  ({m.error})" if m.error else "")
            )

    @models.command("show")
    def models_show(
        version: str = typer.Argument(...), as_json: bool = typer.Option(False, "--json")
    ) -> None:
        """One model: metrics, data hash, deployment history."""
        from inspection.services import deploy

        with pipeline() as ctx:
            detail = deploy_errors(lambda: deploy.show_model(ctx, version=version))
        d = detail.to_dict()
        if as_json:
            typer.echo(_json(d))
            return
        for key in ("version", "path", "meta_version", "roles", "modified", "data_hash"):
            typer.echo(f"{key:>14}: {d[key]}")
        typer.echo(f"{'metrics':>14}: {json.dumps(_short_metrics(d['metrics']))}")
        for h in d["history"]:
            typer.echo(
                f"{'':>14}  {h['at']}  {h['actor']}: production {h['production']}, {h['mode']} "
                f"{h['candidate'] or ''} {h['reason']}"
            )

    @models.command("shadow")
    def models_shadow(
        version: str = typer.Argument(...),
        by: str = typer.Option("", "--by"),
        reason: str = typer.Option("", "--reason"),
    ) -> None:
        """The candidate scores every item from now on; its output is stored and compared, never used."""
        from inspection.services import deploy

        with pipeline() as ctx:
            st = deploy_errors(
                lambda: deploy.shadow(ctx, version=version, by=by or _default_by(), reason=reason)
            )
        typer.echo(f"shadow: {st.candidate} scores every item; production stays {st.production}")

    @models.command("canary")
    def models_canary(
        version: str = typer.Argument(...),
        fraction: float = typer.Option(
            ..., "--fraction", help="share of items the candidate decides, (0, 1)"
        ),
        by: str = typer.Option("", "--by"),
        reason: str = typer.Option("", "--reason"),
    ) -> None:
        """A fixed share of items (chosen by image hash) is decided by the candidate from now on."""
        from inspection.services import deploy

        with pipeline() as ctx:
            st = deploy_errors(
                lambda: deploy.canary(
                    ctx, version=version, fraction=fraction, by=by or _default_by(), reason=reason
                )
            )
        typer.echo(
            f"canary: {st.candidate} decides {st.canary_fraction:.1%} of items; production {st.production}"
        )

    @models.command("promote")
    def models_promote(
        version: str = typer.Argument(...),
        force: bool = typer.Option(
            False, "--force", help="promote even if worse or unproven (needs --reason)"
        ),
        by: str = typer.Option("", "--by"),
        reason: str = typer.Option("", "--reason"),
    ) -> None:
        """Blue-green: all traffic to VERSION; the previous production stays loaded for rollback."""
        from inspection.services import deploy

        with pipeline() as ctx:
            res = deploy_errors(
                lambda: deploy.promote(
                    ctx, version=version, by=by or _default_by(), reason=reason, force=force
                )
            )
        typer.echo(
            f"promoted {res.state.production} (previous production {res.previous})"
            + (" — FORCED" if res.forced else "")
        )

    @models.command("rollback")
    def models_rollback(
        by: str = typer.Option("", "--by"), reason: str = typer.Option("", "--reason")
    ) -> None:
        """Back to the previous production at once (or withdraw a running shadow/canary candidate)."""
        from inspection.services import deploy

        with pipeline() as ctx:
            st = deploy_errors(lambda: deploy.rollback(ctx, by=by or _default_by(), reason=reason))
        typer.echo(f"rolled back: production {st.production}, no candidate")

    @models.command("compare")
    def models_compare(
        version: str = typer.Argument(...),
        station: str | None = typer.Option(None, "--station"),
        limit: int = typer.Option(20, "--limit", min=0, help="disagreements to list"),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Production vs VERSION on the items both scored (shadow or canary)."""
        from inspection.services import deploy

        st = station_arg(station)
        with pipeline() as ctx:
            cmp = deploy_errors(lambda: deploy.compare(ctx, version=version, limit=limit, station=st))
        if as_json:
            typer.echo(_json(cmp.to_dict()))
            return
        if cmp.n == 0:
            typer.echo(f"{cmp.version}: no items scored by both yet (start shadow or canary)")
            return
        lo, hi = cmp.agreement_interval
        typer.echo(
            f"{cmp.version} vs production on {cmp.n} items: agreement {_pct(cmp.agreement)} "
            f"[{_pct(lo)}, {_pct(hi)}], kappa {cmp.kappa if cmp.kappa is None else round(cmp.kappa, 3)}, "
            f"score correlation {cmp.correlation if cmp.correlation is None else round(cmp.correlation, 3)}"
        )
        if cmp.n_labelled:
            typer.echo(
                f"on {cmp.n_labelled} human-labelled items: candidate accuracy "
                f"{_pct(cmp.candidate_accuracy)}, production {_pct(cmp.production_accuracy)}"
            )
        typer.echo(f"{cmp.disagreements_total} disagreements" + (":" if cmp.disagreements else ""))
        for d in cmp.disagreements:
            typer.echo(
                f"  #{d.inspection_id:<7} candidate {d.candidate_score:.3f}  production "
                f"{d.production_score:.3f}  human {d.human_label or '-':<7} {d.link}  {d.image_path}"
            )

    # -- export ------------------------------------------------------------------------------

    @app.command("export")
    def export_cmd(
        out: Path = typer.Argument(..., help="output folder (created; must not hold the export's names)"),
        fmt: str = typer.Option(..., "--format", help="imagefolder | csv | jsonl | coco | labelstudio"),
        station: str | None = typer.Option(None, "--station"),
        since: str | None = typer.Option(None, "--since", help="received at or after (ISO date)"),
        until: str | None = typer.Option(None, "--until", help="received before (ISO date)"),
        source: str = typer.Option("all", "--source", help="human | audit | all"),
        model_version: str | None = typer.Option(None, "--model-version"),
        overwrite: bool = typer.Option(False, "--overwrite", help="replace existing export files"),
        by: str = typer.Option("", "--by"),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Export labelled inspections (streamed, deterministic order, atomic)."""
        from inspection.services import export

        st = station_arg(station)
        try:
            flt = export.ExportFilter(
                station=st,
                since=parse_when(since, "--since"),
                until=parse_when(until, "--until"),
                source=source,
                model_version=model_version,
            )
        except export.ExportError as exc:
            raise fail(str(exc)) from None
        with pipeline() as ctx:
            try:
                result = export.export(
                    ctx, out=out, fmt=fmt, flt=flt, actor=by or _default_by(), overwrite=overwrite
                )
            except export.ExportError as exc:
                raise fail(str(exc)) from None
        if as_json:
            typer.echo(_json(result.to_dict()))
            return
        typer.echo(
            f"exported {result.records} records as {fmt} to {result.out} in {result.seconds:.1f} s"
            + (f" ({result.skipped} without a usable image left out)" if result.skipped else "")
        )
        for f in result.files:
            typer.echo(f"  {f}")


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
