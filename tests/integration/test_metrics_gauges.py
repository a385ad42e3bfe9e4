"""Queue gauges over the real HTTP `/metrics`, parsed with prometheus_client's parser: an empty
queue reads 0 (a series that exists), not "no data"."""

from __future__ import annotations

import shutil
import subprocess

from fastapi.testclient import TestClient

from inspection.services import context, ingest, policies, review
from tests.fakes import level_for, png
from tests.integration.test_api import auth, client, ctx, post, sample, scrape  # noqa: F401  (fixtures)


def _label_all(ctx: context.Pipeline, station: str) -> None:  # noqa: F811  (ctx: the fixture name)
    while (task := review.claim_next(ctx, inspector="ann", station=station)) is not None:
        review.submit_label(ctx, inspection_id=task.inspection_id, inspector="ann", label="ok")


def test_queue_depth_is_zero_not_missing_for_every_known_station(
    client: TestClient,  # noqa: F811
    ctx: context.Pipeline,  # noqa: F811
    auth: dict[str, str],  # noqa: F811
) -> None:
    policies.set_policy(ctx, station="s9", by="eve", reason="t", level="human_only")
    m = scrape(client)
    assert sample(m, "inspection_queue_depth", station="s1", status="queued") == 0  # a policy, no items
    assert sample(m, "inspection_queue_depth", station="s9", status="queued") == 0
    assert sample(m, "inspection_queue_depth", station="nowhere", status="queued") is None

    assert post(client, png(level_for(0.5)), auth).status_code == 201  # to review
    assert sample(scrape(client), "inspection_queue_depth", station="s1", status="queued") == 1
    ingest.inspect(ctx, data=png(level_for(0.5)), station="s7")  # a station with items and no policy
    _label_all(ctx, "s1")
    _label_all(ctx, "s7")
    m = scrape(client)
    assert sample(m, "inspection_queue_depth", station="s1", status="queued") == 0
    assert sample(m, "inspection_queue_depth", station="s7", status="queued") == 0
    assert sample(m, "inspection_queue_oldest_age_seconds", station="s1", status="queued") is None  # no oldest item


def test_promtool_accepts_the_exposition_with_traffic_and_with_an_empty_queue(
    client: TestClient,  # noqa: F811
    auth: dict[str, str],  # noqa: F811
) -> None:
    # Prometheus's own linter (Debian `prometheus`, installed by `make test`): what a real scrape would
    # reject or warn about (bad names, missing HELP/TYPE, counters without _total) fails here.
    promtool = shutil.which("promtool")
    assert promtool, "promtool not found: run `make sysdeps` (Debian package prometheus)"
    assert post(client, png(level_for(0.02)), auth).status_code == 201
    assert post(client, png(level_for(0.5)), auth).status_code == 201
    for text in (client.get("/metrics").text, client.get("/metrics").text):
        out = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0 and out.stdout.strip() == "", out.stdout + out.stderr
