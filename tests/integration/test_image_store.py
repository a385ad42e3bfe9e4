"""The image store (issue 13): a local folder and an S3-compatible object store behind one interface.

The object store is a real S3-compatible server (moto's, installed from the package registry with the
dev dependencies) started here as a subprocess on 127.0.0.1 and a free port, stopped afterwards."""

from __future__ import annotations

import base64
import hashlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fsspec
import pytest
from fastapi.testclient import TestClient

from inspection.api.app import create_app
from inspection.config import Settings
from inspection.services import context, export, ingest, policies, tokens
from inspection.services.accounts import add_user
from inspection.services.image_store import (
    ImageStore,
    LocalCache,
    LocalImageStore,
    ObjectImageStore,
    open_image_store,
    remove_stale_tmp_files,
)
from tests.fakes import BrightnessScorer, Models, level_for, png

REPO = Path(__file__).resolve().parents[2]
START_SECONDS = 30.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_port(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"moto_server exited with {proc.returncode}: {proc.stdout.read() if proc.stdout else b''!r}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    pytest.fail(f"moto_server did not listen on 127.0.0.1:{port} within {START_SECONDS:g} s")


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """A real S3-compatible server (moto) for this module's tests: http://127.0.0.1:<free port>."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_for_port(port, proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        if proc.stdout:
            proc.stdout.close()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The standard AWS variables, as an operator would set them; no ~/.aws files are read."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "test-key",
        "AWS_SECRET_ACCESS_KEY": "test-secret",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
def bucket(s3_endpoint: str, aws_env: None) -> Iterator[Any]:
    """A fresh bucket per test; yields an s3fs filesystem to look inside it."""
    name = f"img-{uuid.uuid4().hex[:12]}"
    fs = fsspec.filesystem("s3", client_kwargs={"endpoint_url": s3_endpoint}, skip_instance_cache=True)
    fs.mkdir(name)
    fs.bucket_name = name  # the tests' handle on the name
    yield fs


def _objects(fs: Any, root: str) -> list[str]:
    fs.invalidate_cache()
    return sorted(fs.find(root))


@dataclass
class Made:
    store: ImageStore
    remote: Any | None  # the bucket's filesystem for the object store


def _make(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Made:
    if kind == "local":
        return Made(LocalImageStore(tmp_path / "data"), None)
    fs = request.getfixturevalue("bucket")
    endpoint = request.getfixturevalue("s3_endpoint")
    cache = LocalCache(tmp_path / "cache", max_bytes=10_000_000)
    return Made(ObjectImageStore(f"s3://{fs.bucket_name}/plant-a", cache=cache, endpoint_url=endpoint), fs)


@pytest.mark.parametrize("kind", ["local", "s3"])
def test_put_get_exists_local_path_round_trip(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    made = _make(kind, tmp_path, request)
    images, key, data = made.store, "images/ab/abcdef.png", png(10, seed=1)
    assert not images.exists(key) and images.size(key) is None
    assert not images.local_path(key).exists()  # missing: a path that does not exist, as a missing file always was
    images.put(key, data)
    assert images.exists(key) and images.size(key) == len(data) and images.get(key) == data
    path = images.local_path(key)
    assert path.read_bytes() == data and path.resolve().is_relative_to(images.local_root.resolve())
    assert images.local_path(key) == path  # a second read is served from the same local file
    if made.remote is not None:  # the object really is in the bucket, under the prefix
        assert _objects(made.remote, made.remote.bucket_name) == [f"{made.remote.bucket_name}/plant-a/{key}"]
    for bad in ("../secret.png", "/etc/passwd", "images/../../x", "images/./x", "images//x", "a\\b", ""):
        with pytest.raises(ValueError):
            images.put(bad, b"x")
        with pytest.raises(ValueError):
            images.local_path(bad)


def test_the_cache_is_bounded_and_never_drops_what_was_just_handed_out(tmp_path: Path) -> None:
    cache = LocalCache(tmp_path / "cache", max_bytes=2500)
    long_ago = time.time() - 3600
    for i in range(3):
        p = cache.add(f"images/0{i}/{i}.png", bytes(1000))
        os.utime(p, (long_ago + i, long_ago + i))  # used an hour ago, oldest first
    # The bound was crossed by the third copy: the least recently used went, down to 80 % of the bound.
    assert sorted(p.name for p in (tmp_path / "cache").rglob("*.png")) == ["1.png", "2.png"]
    cache.hit("images/01/1.png")  # just used: kept while older copies make room
    cache.add("images/03/3.png", bytes(1000))
    assert sorted(p.name for p in (tmp_path / "cache").rglob("*.png")) == ["1.png", "3.png"]


def _settings(tmp_path: Path, store: str, endpoint: str = "") -> Settings:
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    return Settings(data_dir=data, models_dir=tmp_path / "models", image_store=store, image_store_endpoint_url=endpoint)


@pytest.mark.parametrize("kind", ["local", "file", "s3"])
def test_the_same_bytes_are_stored_once(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    if kind == "s3":
        fs = request.getfixturevalue("bucket")
        settings = _settings(tmp_path, f"s3://{fs.bucket_name}/p", request.getfixturevalue("s3_endpoint"))
    else:
        settings = _settings(tmp_path, "" if kind == "local" else f"file://{tmp_path / 'shared'}")
    data = png(level_for(0.5), seed=7)
    with context.Pipeline.create(settings, scorer_factory=Models({"baseline": BrightnessScorer()})) as app:
        for station in ("s1", "s2"):  # the model runs, so a heatmap is stored too
            policies.set_policy(app, station=station, by="eve", reason="t", level="ai_assist")
        first = ingest.inspect(app, data=data, station="s1", source_name="a.png")
        second = ingest.inspect(app, data=data, station="s2", source_name="b.png")
        assert first.inspection.id != second.inspection.id
    sha = hashlib.sha256(data).hexdigest()
    if kind == "s3":
        names = [o.rsplit("/", 1)[1] for o in _objects(fs, fs.bucket_name)]
    else:
        root = settings.data_dir if kind == "local" else tmp_path / "shared"
        names = [p.name for p in (root / "images").rglob("*") if p.is_file()]
    assert sorted(names) == [f"{sha}.fake-1.heatmap.png", f"{sha}.png"]  # one image, one heatmap


def test_the_store_is_chosen_by_inspection_image_store(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("INSPECTION_DATA_DIR", str(tmp_path / "data"))
    assert isinstance(open_image_store(Settings()), LocalImageStore)
    assert open_image_store(Settings()).local_root == tmp_path / "data"  # empty: data_dir, as before
    monkeypatch.setenv("INSPECTION_IMAGE_STORE", f"file://{tmp_path / 'nfs'}")
    assert open_image_store(Settings()).local_root == tmp_path / "nfs"
    monkeypatch.setenv("INSPECTION_IMAGE_STORE", "ftp://host/x")
    with pytest.raises(ValueError, match="INSPECTION_IMAGE_STORE"):
        open_image_store(Settings())


def test_the_endpoint_may_come_from_the_standard_aws_variable(
    bucket: Any, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)  # botocore's own variable; no setting of ours
    images = open_image_store(_settings(tmp_path, f"s3://{bucket.bucket_name}"))
    images.put("images/ef/ef01.png", b"z")
    assert _objects(bucket, bucket.bucket_name) == [f"{bucket.bucket_name}/images/ef/ef01.png"]


def _basic(name: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{name}:a-long-password".encode()).decode()}


def test_an_ingest_through_the_api_lands_in_the_bucket_and_review_and_export_read_it(
    bucket: Any, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("INSPECTION_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("INSPECTION_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("INSPECTION_IMAGE_STORE", f"s3://{bucket.bucket_name}/plant-a")
    monkeypatch.setenv("INSPECTION_IMAGE_STORE_ENDPOINT_URL", s3_endpoint)
    settings = Settings()
    data = png(level_for(0.5), seed=3)
    sha = hashlib.sha256(data).hexdigest()
    with TestClient(create_app(settings, scorer_factory=Models({"baseline": BrightnessScorer()}))) as client:
        app: context.Pipeline = client.app.state.pipeline  # type: ignore[attr-defined]
        policies.set_policy(app, station="s1", by="eve", reason="t", level="partial", pass_below=0.1, reject_above=0.9)
        station = {"Authorization": f"Bearer {tokens.create_token(app, station='s1')}"}
        add_user(app, name="ann", role="inspector", password="a-long-password")
        r = client.post("/api/v1/inspections", files={"image": ("a.png", data, "image/png")}, data={"station": "s1"},
                        headers=station)  # fmt: skip
        assert r.status_code == 201, r.text
        prefix = f"{bucket.bucket_name}/plant-a/images/{sha[:2]}"
        assert _objects(bucket, bucket.bucket_name) == [f"{prefix}/{sha}.fake-1.heatmap.png", f"{prefix}/{sha}.png"]
        assert bucket.cat_file(f"{prefix}/{sha}.png") == data
        assert not (settings.data_dir / "images").exists()  # nothing of the image on this machine's disk
        task = client.post("/api/v1/queue/claim", json={}, headers=_basic("ann")).json()
        img = client.get(task["image_url"], headers=_basic("ann"))  # read back from the bucket via the cache
        assert img.status_code == 200 and img.content == data
        label = client.post(f"/api/v1/inspections/{task['inspection_id']}/label", json={"label": "scratch"},
                            headers=_basic("ann"))  # fmt: skip
        assert label.status_code == 201
        for cached in (settings.data_dir / "image-cache").rglob("*.png"):
            cached.unlink()  # the export must fetch from the bucket again, not rely on this machine's copy
        res = export.export(app, out=tmp_path / "out", fmt="imagefolder", progress=False)
    assert res.records == 1 and res.skipped == 0
    assert [p.read_bytes() for p in (tmp_path / "out" / "scratch").iterdir()] == [data]


_CRASH_IN_RENAME = """
import os, sys, time
from pathlib import Path
from inspection.services.image_store import LocalImageStore

def stuck(src, dst):  # the data is written and fsynced; the process dies before the rename
    print("renaming", flush=True)
    time.sleep(60)

os.replace = stuck
LocalImageStore(Path(sys.argv[1])).put("images/ab/abc.png", b"x" * 1_000_000)
"""


def test_a_crash_while_storing_leaves_no_half_image_under_the_final_name(tmp_path: Path) -> None:
    root = tmp_path / "data"
    proc = subprocess.Popen(
        [sys.executable, "-c", _CRASH_IN_RENAME, str(root)], stdout=subprocess.PIPE, cwd=REPO, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "renaming"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
        if proc.stdout:
            proc.stdout.close()
    images = LocalImageStore(root)
    assert not images.exists("images/ab/abc.png") and not images.local_path("images/ab/abc.png").exists()
    leftovers = list((root / "images" / "ab").glob(".tmp-*"))
    assert len(leftovers) == 1
    assert remove_stale_tmp_files(root / "images", older_than=0) == 1  # what the next start removes
    assert not list((root / "images" / "ab").iterdir())


def test_a_failed_write_leaves_neither_the_image_nor_a_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    images = LocalImageStore(tmp_path / "data")

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space"):
        images.put("images/cd/cdef.png", b"y" * 1000)
    assert not images.exists("images/cd/cdef.png")
    assert not list((tmp_path / "data" / "images" / "cd").iterdir())
