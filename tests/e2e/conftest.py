"""Browser tests: a real uvicorn server (thread) on a free port, a real SQLite database in tmp, a real
model (the shipped baseline when present, else a tiny one trained here in a few seconds), and the
system Chromium driven by Playwright."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from inspection.config import Settings
from inspection.services import accounts, context, ingest

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "test-artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "correct-horse-battery"

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


@dataclass(frozen=True)
class Server:
    url: str
    settings: Settings
    pipeline: context.Pipeline
    images: list[Path]  # synthetic phone images not ingested yet (1920x1080)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """(models_dir, name): models/baseline when shipped, else a tiny real artifact trained now."""
    shipped = REPO / "models"
    if (shipped / "baseline" / "model.json").exists():
        return shipped, "baseline"
    from inspection.vision import synth
    from inspection.vision.preprocess import PreprocessSpec
    from inspection.vision.train import TrainConfig, train

    root = tmp_path_factory.mktemp("tiny-model")
    synth.generate(root / "data", count=20, seed=1, size=(640, 360), progress=False)
    spec = PreprocessSpec(mode="phone", canvas_h=128, canvas_w=64)
    train(root / "data", root / "models" / "tiny", config=TrainConfig(epochs=1, preprocess=spec), log=lambda _m: None)
    return root / "models", "tiny"


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory, model_dir: tuple[Path, str]) -> Iterator[Server]:
    from inspection.api.app import create_web_app
    from inspection.vision import synth

    root = tmp_path_factory.mktemp("e2e")
    models, name = model_dir
    settings = Settings(data_dir=root / "data", models_dir=models, default_model=name, database_url="")
    synth.generate(root / "phones", count=24, seed=99, size=(1920, 1080), progress=False)
    images = sorted((root / "phones").glob("*/*.jpg"))
    app = create_web_app(settings)
    pipeline: context.Pipeline = app.state.pipeline
    for user, role in (("insp1", "inspector"), ("eng1", "engineer"), ("admin1", "admin")):
        accounts.add_user(pipeline, name=user, role=role, password=PASSWORD)
    with serving(app) as url:
        yield Server(url, settings, pipeline, images)


def copy_model(src: Path, dst: Path, *, version: str, metrics: dict[str, Any] | None = None) -> None:
    """A copy of the model artifact at `src` registered as `version` (extra `metrics` merged in)."""
    shutil.copytree(src, dst)
    meta = json.loads((dst / "model.json").read_text())
    meta["version"] = version
    if metrics:
        meta.setdefault("metrics", {}).update(metrics)
    (dst / "model.json").write_text(json.dumps(meta))


@contextlib.contextmanager
def engineer_server(root: Path, model_dir: tuple[Path, str], versions: Sequence[str]) -> Iterator[Server]:
    """The web app over copies of the test model named `versions` (the first serves), engineer eng1 added,
    served on a free port."""
    from inspection.api.app import create_web_app

    src_models, name = model_dir
    for version in versions:
        copy_model(src_models / name, root / "models" / version, version=version)
    settings = Settings(data_dir=root / "data", models_dir=root / "models", default_model=versions[0],
                        database_url="")  # fmt: skip
    app = create_web_app(settings)
    pipeline: context.Pipeline = app.state.pipeline
    accounts.add_user(pipeline, name="eng1", role="engineer", password=PASSWORD)
    with serving(app) as url:
        yield Server(url, settings, pipeline, [])


def wait_text(page: Any, selector: str, text: str, timeout: float = 30_000) -> None:
    """Wait until the element at `selector` shows `text`."""
    page.wait_for_function(
        "([s, t]) => { const e = document.querySelector(s); return !!e && e.innerText.includes(t); }",
        arg=[selector, text],
        timeout=timeout,
    )


@contextlib.contextmanager
def serving(app: Any) -> Iterator[str]:
    """Run the ASGI app with uvicorn on a free 127.0.0.1 port in a thread; yields its URL, stops it after."""
    import uvicorn

    config = uvicorn.Config(app, host="127.0.0.1", port=_free_port(), log_level="warning", lifespan="on")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not srv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{config.port}"
    finally:
        srv.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.fail("system Chromium not installed at /usr/bin/chromium (make sysdeps installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def new_page(browser: object) -> Iterator[object]:
    """A fresh browser context (own cookies) at 1920x1080; closes afterwards."""
    contexts = []

    def make() -> object:
        ctx = browser.new_context(viewport={"width": 1920, "height": 1080})  # type: ignore[attr-defined]
        contexts.append(ctx)
        page = ctx.new_page()
        page.set_default_timeout(20_000)
        return page

    yield make
    for ctx in contexts:
        ctx.close()


@contextlib.contextmanager
def engineer_page(browser: object, base: str, *, viewport: dict[str, int] | None = None) -> Iterator[object]:
    """eng1 logged in on the engineer screen (1366x768 unless told), in a context of its own, closed after.
    Uses the session's one Playwright: a second sync_playwright in the same process fails with "Sync API
    inside the asyncio loop" once another test module has started one."""
    ctx = browser.new_context(viewport=viewport or {"width": 1366, "height": 768})  # type: ignore[attr-defined]
    try:
        page = ctx.new_page()
        page.set_default_timeout(30_000)
        login(page, base, "eng1", next_path="/engineer/")
        page.wait_for_selector("#policy-current")
        yield page
    finally:
        ctx.close()


def login(page: object, base: str, name: str, *, next_path: str = "/review/") -> None:
    page.goto(f"{base}/login?next={next_path}", wait_until="load")  # type: ignore[attr-defined]
    page.fill("#name", name)  # type: ignore[attr-defined]
    page.fill("#password", PASSWORD)  # type: ignore[attr-defined]
    page.click("#login")  # type: ignore[attr-defined]
    page.wait_for_url(f"**{next_path}**", wait_until="load")  # type: ignore[attr-defined]


def shot(page: object, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path))  # type: ignore[attr-defined]
    return path


def ingest_file(server: Server, station: str, image: Path) -> ingest.IngestResult:
    return ingest.inspect(server.pipeline, data=image.read_bytes(), station=station, source_name=image.name)


def fresh_copy(path: Path, tmp: Path) -> Path:
    out = tmp / path.name
    shutil.copy(path, out)
    return out
