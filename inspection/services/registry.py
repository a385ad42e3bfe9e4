"""Model registry: the artifacts under `settings.models_dir` and the deployment state.

A model is a directory under `settings.models_dir`; its directory name is its version. Its
`model.json` is read here (through `vision.artifact_meta`, the one parser) for every service and
screen; a minimal or damaged file still lists, with `error` set. The deployment state is the latest
`DeploymentRow` (none yet: `settings.default_model` serves alone).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, PlainSerializer

from inspection import store
from inspection.services.context import Pipeline
from inspection.vision.artifact_meta import META, is_artifact, read_meta_json

__all__ = [
    "ArtifactMeta",
    "DeployError",
    "DeploymentState",
    "ModelDetail",
    "ModelInfo",
    "ProductionStep",
    "Report",
    "artifact_dirs",
    "current_state",
    "declared_versions",
    "heldout_metrics",
    "is_artifact",
    "list_models",
    "model_dir",
    "model_info",
    "previous_production",
    "read_artifact",
    "rollback_target",
    "show_model",
    "state_and_previous",
    "state_and_target",
    "validate_version",
]

_VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class DeployError(ValueError):
    """A deployment change that must not happen (unknown model, worse candidate, nothing to roll back).

    `str(exc)` speaks the command line (options such as --force); `web` says the same in the words of
    the engineer screen (its checkboxes and fields), for the web handlers."""

    def __init__(self, message: str, *, web: str | None = None) -> None:
        super().__init__(message)
        self.web = web or message


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


# datetime.isoformat(), not pydantic's "Z" form: event details and --json output keep their format
IsoTime = Annotated[datetime | None, PlainSerializer(_iso, return_type=str | None)]


class Report(BaseModel):
    """A read-only report; `to_dict()` is its JSON-ready form (CLI --json, event details)."""

    model_config = ConfigDict(frozen=True)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


# State


class DeploymentState(Report):
    """Built from a `DeploymentRow` (`from_row`) or by keyword."""

    production: str = Field(validation_alias=AliasChoices("production", "production_version"))
    candidate: str | None = Field(default=None, validation_alias=AliasChoices("candidate", "candidate_version"))
    mode: str = store.DeploymentMode.NONE
    canary_fraction: float = 0.0
    at: IsoTime = None
    actor: str | None = None
    reason: str = ""
    id: int | None = None

    @classmethod
    def from_row(cls, row: store.DeploymentRow | None, *, default_model: str) -> DeploymentState:
        if row is None:
            return cls(production=default_model)
        return cls.model_validate(row, from_attributes=True)


def current_state(app: Pipeline) -> DeploymentState:
    with app.read() as session:
        return DeploymentState.from_row(store.current_deployment(session), default_model=app.settings.default_model)


def previous_production(history: list[str], *, default_model: str) -> str | None:
    """The production version before the current one, from the production versions of the
    deployment rows in order (the implicit first state is `default_model`); None if there is none."""
    versions = [default_model, *history]
    current = versions[-1]
    for v in reversed(versions[:-1]):
        if v != current:
            return v
    return None


@dataclass(frozen=True)
class ProductionStep:
    """The production version of one deployment row, and whether that row vouched for it: a
    promotion that passed the held-out comparison (not forced)."""

    version: str
    vouched: bool = False


def rollback_target(steps: Sequence[ProductionStep], *, default_model: str) -> str | None:
    """Where rollback goes: the most recent earlier production version that was ever vouched for
    (the configured default model counts: nobody forced it). A version that reached production
    only by force is skipped, so a rollback never re-deploys a model the comparison refused;
    bringing it back takes a forced promotion with a reason again. None when there is no such version."""
    trusted = {default_model} | {s.version for s in steps if s.vouched}
    versions = [default_model, *(s.version for s in steps)]
    current = versions[-1]
    for v in reversed(versions[:-1]):
        if v != current and v in trusted:
            return v
    return None


def _steps(session: store.Session, rows: Sequence[store.DeploymentRow]) -> list[ProductionStep]:
    """Each row's production version with its vouched flag, read from the promotion events (who and
    why live in events; the rows need no extra column)."""
    forced: dict[int, bool] = {}
    for e in store.list_events(session, kind="deployment.promote", limit=1_000_000):
        dep_id = (e.detail or {}).get("deployment_id")
        if isinstance(dep_id, int):
            forced[dep_id] = bool((e.detail or {}).get("forced"))
    return [ProductionStep(r.production_version, vouched=r.id in forced and not forced[r.id]) for r in rows]


@dataclass(frozen=True)
class _History:
    rows: list[store.DeploymentRow]
    state: DeploymentState
    previous: str | None  # the production version before the current one
    target: str | None  # where a rollback of production goes (`rollback_target`)


def _history(app: Pipeline) -> _History:
    with app.read() as session:
        rows = store.deployment_history(session)
        steps = _steps(session, rows)
    default = app.settings.default_model
    state = DeploymentState.from_row(rows[-1] if rows else None, default_model=default)
    prev = previous_production([r.production_version for r in rows], default_model=default)
    return _History(rows, state, prev, rollback_target(steps, default_model=default))


def state_and_previous(app: Pipeline) -> tuple[DeploymentState, str | None]:
    h = _history(app)
    return h.state, h.previous


def state_and_target(app: Pipeline) -> tuple[DeploymentState, str | None]:
    """The current state and where a rollback of production would go."""
    h = _history(app)
    return h.state, h.target


# Artifacts on disk


@dataclass(frozen=True)
class ArtifactMeta:
    """What an artifact's model.json declares, read leniently (missing fields take defaults)."""

    version: str | None  # "version" in model.json (what predictions record); None when absent
    data_hash: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    preprocess: dict[str, Any] | None = None
    error: str | None = None  # unreadable model.json


def read_artifact(path: Path) -> ArtifactMeta:
    try:
        data = read_meta_json(path)
    except (OSError, ValueError) as exc:
        return ArtifactMeta(version=None, error=f"unreadable {META}: {exc}")
    pre = data.get("preprocess")
    return ArtifactMeta(
        version=str(data["version"]) if "version" in data else None,
        data_hash=str(data.get("data_hash", "")),
        metrics=dict(data.get("metrics", {}) or {}),
        training=dict(data.get("training", {}) or {}),
        preprocess=pre if isinstance(pre, dict) else None,
    )


def declared_versions(models_dir: Path, version: str) -> set[str]:
    """A directory name and the version its model.json declares (what predictions record)."""
    declared = read_artifact(models_dir / version).version
    return {version} if declared is None else {version, declared}


class ModelInfo(Report):
    version: str  # directory name
    path: Path
    meta_version: str  # "version" in model.json (what predictions record)
    roles: tuple[str, ...]  # production / shadow / canary / previous
    modified: IsoTime
    data_hash: str = ""
    metrics: dict[str, Any] = Field(default_factory=dict)
    training: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None  # unreadable model.json

    @property
    def heldout(self) -> dict[str, Any]:
        """Metrics on the held-out split ({} when the artifact has none)."""
        held = self.metrics.get("heldout")
        return held if isinstance(held, dict) else {}

    @property
    def heldout_summary(self) -> tuple[str, dict[str, Any]]:
        """(where from, metrics) of the model's own held-out evaluation (`heldout_metrics`)."""
        return heldout_metrics(self.metrics)


def heldout_metrics(metrics: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(source, metrics) of an artifact's held-out evaluation, whichever way it was recorded: a
    `heldout` block (training), the candidate's side of a retrain comparison, or a test-set block
    (a key with "test" in it holding an AUROC, as the shipped baseline records its synthetic test
    set). ("", {}) when the artifact has none."""
    held = metrics.get("heldout")
    if isinstance(held, dict) and held:
        return "heldout", held
    retrain = metrics.get("retrain")
    cand = ((retrain or {}).get("heldout") or {}).get("candidate") if isinstance(retrain, dict) else None
    if isinstance(cand, dict) and cand:
        n = ((retrain or {}).get("heldout") or {}).get("n")
        return "retrain held-out", {**cand, **({"n": n} if n is not None and "n" not in cand else {})}
    for key in sorted(metrics):
        block = metrics[key]
        if "test" in key and isinstance(block, dict) and "auroc" in block:
            return key, block
    return "", {}


class ModelDetail(ModelInfo):
    deployment: DeploymentState
    history: list[DeploymentState]  # deployment rows that name this version


def validate_version(version: str) -> str:
    v = (version or "").strip()
    if not _VERSION_RE.match(v) or v in (".", ".."):
        raise DeployError(
            f"invalid model version {version!r}: a directory name of 1-128 letters, digits, '.', '_' or '-'"
        )
    return v


def artifact_dirs(models_dir: Path) -> list[Path]:
    """Artifact directories under models_dir, by name (hidden ones, such as retrain staging, skipped)."""
    if not models_dir.is_dir():
        return []
    return sorted(p for p in models_dir.iterdir() if p.is_dir() and not p.name.startswith(".") and is_artifact(p))


def model_dir(app: Pipeline, version: str) -> Path:
    """The artifact directory of `version`, which must be a direct child of models_dir."""
    v = validate_version(version)
    root = app.settings.models_dir.resolve()
    path = (root / v).resolve()
    if path.parent != root:
        raise DeployError(f"model {v!r} resolves outside {root}")
    if not is_artifact(path):
        known = ", ".join(m.name for m in artifact_dirs(app.settings.models_dir)) or "none"
        raise DeployError(f"no model {v!r} under {app.settings.models_dir} (known: {known})")
    return path


def _info_fields(path: Path, roles: tuple[str, ...]) -> dict[str, Any]:
    meta = read_artifact(path)
    try:
        modified: datetime | None = datetime.fromtimestamp((path / META).stat().st_mtime).astimezone()
    except OSError:
        modified = None
    return {
        "version": path.name,
        "path": path,
        "meta_version": meta.version if meta.version is not None else path.name,
        "roles": roles,
        "modified": modified,
        "data_hash": meta.data_hash,
        "metrics": meta.metrics,
        "training": meta.training,
        "error": meta.error,
    }


def model_info(path: Path, roles: tuple[str, ...] = ()) -> ModelInfo:
    return ModelInfo(**_info_fields(path, roles))


def _roles(state: DeploymentState, previous: str | None, version: str) -> tuple[str, ...]:
    roles = []
    if version == state.production:
        roles.append("production")
    if version == state.candidate and state.mode != store.DeploymentMode.NONE:
        roles.append(str(state.mode))
    if previous is not None and version == previous:
        roles.append("previous")
    return tuple(roles)


def list_models(app: Pipeline) -> list[ModelInfo]:
    """Every artifact directory under models_dir, with its deployment roles."""
    state, prev = state_and_previous(app)
    return [model_info(p, _roles(state, prev, p.name)) for p in artifact_dirs(app.settings.models_dir)]


def show_model(app: Pipeline, *, version: str) -> ModelDetail:
    path = model_dir(app, version)
    h = _history(app)
    mine = [
        DeploymentState.from_row(r, default_model=app.settings.default_model)
        for r in h.rows
        if path.name in (r.production_version, r.candidate_version)
    ]
    roles = _roles(h.state, h.previous, path.name)
    return ModelDetail(**_info_fields(path, roles), deployment=h.state, history=mine)
