"""Pipeline commands: ingest, policy, tokens, audit/shadow reports, db upgrade.

Thin: build Settings at the entry, call one service function, format. Known errors print one line
and exit 2; torch is imported only when a command actually scores images.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import typer

from inspection.config import Settings

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}


def fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", err=True, fg="red")
    return typer.Exit(2)


def _json(obj: Any) -> str:
    def clean(v: Any) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [clean(x) for x in v]
        return v

    return json.dumps(clean(obj))


def register(app: typer.Typer, *, scorer_factory: Callable[[Settings], Any] | None = None) -> None:
    """Add the commands. `scorer_factory(settings) -> ScorerFactory` swaps the model (tests use fakes)."""
    from inspection.services import context, errors, ingest, policies, reports, validation
    from inspection.services import tokens as station_tokens

    def pipeline() -> context.Pipeline:
        settings = Settings()
        factory = scorer_factory(settings) if scorer_factory is not None else None
        try:
            return context.Pipeline.create(settings, scorer_factory=factory)
        except Exception as exc:  # unreachable database, bad URL: one line, not a traceback
            raise fail(f"cannot open the database {_safe_url(settings.database_url)}: {exc}") from None

    policy = typer.Typer(no_args_is_help=True, help="Show or change a station's automation policy.")
    tokens = typer.Typer(no_args_is_help=True, help="API tokens for stations.")
    audit = typer.Typer(no_args_is_help=True, help="Escape and false-reject rates from blind audits.")
    shadow = typer.Typer(no_args_is_help=True, help="Model vs inspectors under shadow / ai_assist.")
    db = typer.Typer(no_args_is_help=True, help="Database schema.")
    app.add_typer(policy, name="policy")
    app.add_typer(tokens, name="tokens")
    app.add_typer(audit, name="audit")
    app.add_typer(shadow, name="shadow")
    app.add_typer(db, name="db")

    @app.command("ingest")
    def ingest_cmd(
        paths: list[Path] = typer.Argument(..., help="image files and/or folders (searched recursively)"),
        station: str = typer.Option("default", "--station", help="station the images come from"),
        as_json: bool = typer.Option(False, "--json", help="one JSON object per line"),
    ) -> None:
        """Inspect images: decide or queue each one under the station's policy."""
        missing = [str(p) for p in paths if not p.exists()]
        if missing:
            raise fail(f"no such file or folder: {', '.join(missing)}")
        try:
            station = validation.validate_station(station)
        except errors.InputError as exc:
            raise fail(str(exc)) from None
        failed = 0
        with pipeline() as ctx:
            for path in _image_files(paths):
                try:
                    data = path.read_bytes()
                    result = ingest.inspect(
                        ctx, data=data, station=station, source_name=path.name, actor="cli"
                    )
                except (OSError, errors.InputError) as exc:
                    failed += 1
                    msg = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                    if as_json:
                        typer.echo(_json({"path": str(path), "error": msg}))
                    else:
                        typer.secho(f"error: {path}: {msg}", err=True, fg="red")
                    continue
                line = ingest.inspection_to_dict(result.inspection)
                if as_json:
                    keys = ("id", "station", "route", "score", "decided_by", "label", "reason")
                    typer.echo(_json({k: line[k] for k in keys} | {"path": str(path)}))
                else:
                    score = "-" if line["score"] is None else f"{line['score']:.4f}"
                    typer.echo(
                        f"{line['id']:>6}  {station}  {line['route']:<11} score {score:<6}  "
                        f"{line['label'] or 'pending':<7}  {path}  ({line['reason']})"
                    )
        if failed:
            raise typer.Exit(1)

    @policy.command("show")
    def policy_show(
        station: str | None = typer.Option(None, "--station", help="one station (default: all configured)"),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Current policy of a station (with its history), or of every configured station."""
        with pipeline() as ctx:
            try:
                if station is not None:
                    current = policies.get_policy(ctx, station=station)
                    records = policies.list_policies(ctx, station=station)
                else:
                    records = policies.list_policies(ctx)
            except errors.InputError as exc:
                raise fail(str(exc)) from None
        if station is not None and not records:
            # Never configured: show the safe default it runs under.
            payload: list[dict[str, Any]] = [policies.policy_to_dict(current) | {"note": "default: never configured"}]
        else:
            payload = [
                policies.policy_to_dict(r.policy)
                | {
                    "created_by": r.created_by,
                    "created_at": r.created_at.isoformat(),
                    "reason": r.reason,
                    "old": r.old,
                }
                for r in records
            ]
        if as_json:
            typer.echo(_json(payload if station is None else {"current": payload[-1], "history": payload}))
            return
        if not payload:
            typer.echo("no station has a policy yet (unconfigured stations run human_only)")
        for p in payload:
            typer.echo(
                f"{p['station']} v{p['version']}: {p['level']} pass_below={p['pass_below']} "
                f"reject_above={p['reject_above']} audit_rate={p['audit_rate']}"
                + (
                    f"  — {p['created_by']} {p['created_at']}: {p['reason']}"
                    if "created_by" in p
                    else f"  ({p['note']})"
                )
            )

    @policy.command("set")
    def policy_set(
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
        from inspection.core.domain import PolicyError

        with pipeline() as ctx:
            try:
                new = policies.set_policy(
                    ctx,
                    station=station,
                    by=by,
                    reason=reason,
                    level=level,
                    pass_below=pass_below,
                    reject_above=reject_above,
                    audit_rate=audit_rate,
                )
            except PolicyError as exc:
                raise fail(str(exc)) from None
        if as_json:
            typer.echo(_json(policies.policy_to_dict(new)))
        else:
            typer.echo(
                f"{new.station} v{new.version}: {new.level.value} pass_below={new.pass_below} "
                f"reject_above={new.reject_above} audit_rate={new.audit_rate}"
            )

    @tokens.command("create")
    def tokens_create(
        station: str = typer.Option(..., "--station"),
        by: str | None = typer.Option(None, "--by"),
    ) -> None:
        """Create an API token for a station. It is shown once; only its hash is stored."""
        with pipeline() as ctx:
            try:
                token = station_tokens.create_token(ctx, station=station, by=by)
            except errors.InputError as exc:
                raise fail(str(exc)) from None
        typer.echo(token)

    @audit.command("report")
    def audit_report_cmd(
        station: str | None = typer.Option(None, "--station"),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Escape rate and false-reject rate estimated from blind audit labels (95 % intervals)."""
        with pipeline() as ctx:
            try:
                report = reports.audit_report(ctx, station=station)
            except errors.InputError as exc:
                raise fail(str(exc)) from None
        if as_json:
            typer.echo(_json(report.to_dict()))
            return
        typer.echo(f"station: {station or 'all'}   audits: {report.audits}   still queued: {report.pending}")
        typer.echo(_estimate_line("escape rate (auto-passed, auditor says scratch)", report.escape))
        typer.echo(_estimate_line("false-reject rate (auto-rejected, auditor says ok)", report.false_reject))

    @shadow.command("report")
    def shadow_report_cmd(
        station: str | None = typer.Option(None, "--station"),
        max_escape: float = typer.Option(0.002, "--max-escape", help="target escape rate (upper bound)"),
        model_version: str | None = typer.Option(None, "--model-version", help="default: production"),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Model vs inspector agreement and the thresholds the evidence supports."""
        with pipeline() as ctx:
            try:
                r = reports.shadow_report(
                    ctx, station=station, max_escape=max_escape, model_version=model_version
                )
            except errors.InputError as exc:
                raise fail(str(exc)) from None
        if as_json:
            typer.echo(_json(r.to_dict()))
            return
        typer.echo(f"station: {station or 'all'}   labelled items: {r.n}")
        typer.echo("                 inspector scratch   inspector ok")
        typer.echo(f"model scratch    {r.tp:>17}   {r.fp:>12}")
        typer.echo(f"model ok         {r.fn:>17}   {r.tn:>12}")
        if r.agreement is not None:
            typer.echo(
                f"agreement {r.agreement:.1%} (95 % CI {r.agreement_low:.1%}–{r.agreement_high:.1%})"
                + (f", kappa {r.kappa:.3f}" if r.kappa is not None else "")
            )
        typer.echo(r.summary)

    @db.command("upgrade")
    def db_upgrade() -> None:
        """Upgrade the database schema to the latest version."""
        from inspection import store

        settings = Settings()
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            engine = store.make_engine(settings.database_url)
            store.upgrade_database(engine)
            rev = store.current_revision(engine)
            engine.dispose()
        except Exception as exc:
            raise fail(f"cannot upgrade {_safe_url(settings.database_url)}: {exc}") from None
        typer.echo(f"database at revision {rev}: {_safe_url(settings.database_url)}")


def _image_files(paths: list[Path]) -> Iterator[Path]:
    """Files given explicitly are always ingested (an unreadable one still goes to a person);
    folders contribute files with an image suffix, in a stable order."""
    for p in paths:
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES and not f.name.startswith("."):
                    yield f
        else:
            yield p


def _estimate_line(name: str, e: Any) -> str:
    if e.trials == 0:
        return f"{name}: no audits yet"
    return f"{name}: {e.rate:.2%} ({e.events}/{e.trials}), 95 % CI {e.low:.2%}–{e.high:.2%}"


def _safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<invalid database URL>"
