"""Demo set-up for `inspection serve --demo` (INSPECTION_DEMO=1). Never runs in a production start.

First start:
- demo users `inspector`, `engineer`, `admin` with random passwords (stored hashed; the plain
  passwords are remembered in `data_dir/demo-users.json`, mode 0600, so a restart prints them again);
- synthetic phone images: `history` of them ingested while the demo station is in shadow mode and
  labelled with their true label (so the engineer screens have evidence to show), then the station
  is set to `partial` and `count` more are ingested, so the review queue has items at once.
Later starts only print the passwords (and re-create users if the database was reset).
"""

from __future__ import annotations

import csv
import functools
import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from inspection import store
from inspection.config import Settings
from inspection.core.domain import Role
from inspection.services import accounts, ingest, policies, review
from inspection.services.context import Pipeline
from inspection.services.registry import artifact_dirs, is_artifact
from inspection.vision import synth
from inspection.vision.preprocess import PreprocessSpec

DEMO_STATION = "demo-line"
DEMO_USERS = (("inspector", Role.INSPECTOR), ("engineer", Role.ENGINEER), ("admin", Role.ADMIN))
HISTORY_INSPECTOR = "demo-history"
CREDENTIALS_FILE = "demo-users.json"
SEEDED_MARKER = "demo-seeded"


@dataclass(frozen=True)
class DemoInfo:
    passwords: dict[str, str]
    station: str
    ingested: int
    queued: int
    fresh: bool  # images were ingested in this start


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    os.chmod(path, 0o600)


def ensure_users(app: Pipeline) -> dict[str, str]:
    """Demo users with remembered random passwords; (re-)created in the database when missing."""
    path = app.settings.data_dir / CREDENTIALS_FILE
    passwords: dict[str, str] = {}
    if path.exists():
        os.chmod(path, 0o600)
        passwords = {str(k): str(v) for k, v in json.loads(path.read_text()).items()}
    changed = False
    for name, _role in DEMO_USERS:
        if name not in passwords:
            passwords[name] = secrets.token_urlsafe(12)
            changed = True
    if changed:
        _write_private(path, json.dumps(passwords, indent=2))
    for name, role in DEMO_USERS:
        if accounts.get_user(app, name=name) is None:
            accounts.add_user(app, name=name, role=role, password=passwords[name], by="demo")
    return passwords


def find_model(settings: Settings) -> str | None:
    """The artifact to use: the configured default, else any artifact under models_dir."""
    if is_artifact(settings.models_dir / settings.default_model):
        return settings.default_model
    found = artifact_dirs(settings.models_dir)
    return found[0].name if found else None


def train_small_model(settings: Settings, log: Callable[[str], None]) -> None:
    """No model shipped: train a small one on synthetic images (a minute at most on a laptop)."""
    # torch is loaded only when a demo has to train its model
    from inspection.vision.train import TrainConfig, train

    root = settings.data_dir / "demo-model"
    data = root / "train-images"
    if not is_artifact(root / "models" / "demo"):
        log("no model under models/: training a small demo model on synthetic images ...")
        if data.exists():
            shutil.rmtree(data)
        synth.generate(data, count=120, seed=11, size=(640, 360), progress=False)
        train(
            data,
            root / "models" / "demo",
            config=TrainConfig(epochs=3, preprocess=PreprocessSpec(mode="phone", canvas_h=256, canvas_w=128)),
            log=lambda _m: None,
        )
    settings.models_dir = root / "models"
    settings.default_model = "demo"


def _true_labels(folder: Path) -> list[tuple[Path, str]]:
    with (folder / "manifest.csv").open(newline="") as fh:
        return [(folder / row["file"], row["label"]) for row in csv.DictReader(fh)]


def seed_images(app: Pipeline, *, count: int, history: int, log: Callable[[str], None]) -> tuple[int, int]:
    """Ingest the demo images (see the module doc); returns (ingested, queued)."""
    folder = app.settings.data_dir / "demo-images"
    if folder.exists():
        shutil.rmtree(folder)
    log(f"generating {count + history} synthetic phone images ...")
    synth.generate(folder, count=count + history, seed=2024, size=(1920, 1080), progress=False)
    items = _true_labels(folder)
    old, new = items[:history], items[history:]

    set_policy = functools.partial(policies.set_policy, app, station=DEMO_STATION, by="demo")
    set_policy(reason="demo: collect labels in shadow mode", level="shadow")
    for path, _label in old:
        ingest.inspect(
            app, data=path.read_bytes(), station=DEMO_STATION, source_name=path.name, actor="demo"
        )
    truth = {p.name: lab for p, lab in old}
    while (task := review.claim_next(app, inspector=HISTORY_INSPECTOR, station=DEMO_STATION)) is not None:
        label = truth.get(_source_name(app, task.inspection_id) or "")
        if label is None:
            review.skip(app, inspection_id=task.inspection_id, inspector=HISTORY_INSPECTOR)
            continue
        review.submit_label(app, inspection_id=task.inspection_id, inspector=HISTORY_INSPECTOR, label=label)

    set_policy(
        reason="demo: partial automation, uncertain phones to people",
        level="partial", pass_below=0.05, reject_above=0.95, audit_rate=0.05,
    )
    for path, _label in new:
        ingest.inspect(
            app, data=path.read_bytes(), station=DEMO_STATION, source_name=path.name, actor="demo"
        )
    depth = sum(q.count for q in review.queue_depth(app) if q.station == DEMO_STATION)
    return len(items), depth


def _source_name(app: Pipeline, inspection_id: int) -> str | None:
    with app.read() as session:
        row = store.get_inspection(session, inspection_id=inspection_id)
        if row is None:
            return None
        image = store.get_image(session, image_id=row.image_id)
        return image.source_name if image is not None else None


def setup(
    settings: Settings, *, count: int = 60, history: int = 40, log: Callable[[str], None] = print
) -> DemoInfo:
    """Prepare the demo (idempotent) and print the demo users' passwords."""
    if find_model(settings) is None:
        train_small_model(settings, log)
    else:
        settings.default_model = find_model(settings) or settings.default_model
    with Pipeline.create(settings) as app:
        passwords = ensure_users(app)
        marker = settings.data_dir / SEEDED_MARKER
        fresh = not marker.exists()
        ingested = queued = 0
        if fresh:
            ingested, queued = seed_images(app, count=count, history=history, log=log)
            marker.write_text("1\n")
        else:
            queued = sum(q.count for q in review.queue_depth(app) if q.station == DEMO_STATION)
    log("")
    log("Demo users (passwords also in " + str(settings.data_dir / CREDENTIALS_FILE) + ", mode 0600):")
    for name, role in DEMO_USERS:
        log(f"  {name:<10} role {role.value:<10} password {passwords[name]}")
    log(
        f"Demo station {DEMO_STATION!r}: {queued} item(s) waiting for review; "
        f"model {settings.default_model!r}."
    )
    log("")
    return DemoInfo(passwords, DEMO_STATION, ingested, queued, fresh)
