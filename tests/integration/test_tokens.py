"""API tokens of stations: listed with when they were last used, revoked at once (service, HTTP and
CLI), on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from inspection.config import Settings
from inspection.services import errors, ingest, tokens
from inspection.services.context import Pipeline
from tests.engineer_fixtures import fake_pipeline, png_bytes
from tests.fakes import FakeClock


@pytest.fixture
def clocked(db_settings: Settings) -> Iterator[tuple[Pipeline, FakeClock]]:
    clock = FakeClock()
    with fake_pipeline(db_settings, ["v1"], clock=clock) as app:
        yield app, clock


def test_tokens_list_with_last_use_and_revoke_once(clocked: tuple[Pipeline, FakeClock]) -> None:
    app, clock = clocked
    token = tokens.create_token(app, station="s1", by="erin")
    tokens.create_token(app, station="s2", by="erin")
    (t1,) = tokens.list_tokens(app, station="s1")
    assert (t1.station, t1.prefix, t1.created_by, t1.last_used, t1.active) == ("s1", token[:12], "erin", None, True)
    clock.advance(60)
    ingest.inspect(app, data=png_bytes(40, seed=1), station="s1")
    used = clock.now
    assert tokens.list_tokens(app, station="s1")[0].last_used == used
    assert tokens.list_tokens(app, station="s2")[0].last_used is None  # another station's items do not count
    clock.advance(60)
    info = tokens.revoke_token(app, token_id=t1.id, by="erin", reason="camera replaced")
    assert not info.active and info.revoked_at == clock.now
    assert tokens.authenticate_token(app, token=token) is None
    clock.advance(60)
    ingest.inspect(app, data=png_bytes(50, seed=2), station="s1")  # e.g. through a new token
    assert tokens.list_tokens(app, station="s1")[0].last_used == used  # only items while it was valid
    assert tokens.revoke_token(app, token_id=t1.id, by="erin").revoked_at == info.revoked_at  # harmless twice
    with pytest.raises(errors.NotFound):
        tokens.revoke_token(app, token_id=9999, by="erin")
    assert t1.to_dict()["active"] is True and "token_hash" not in t1.to_dict()


def test_a_revoked_token_is_refused_over_http(settings: Settings) -> None:
    from inspection.api.app import create_app
    from tests.engineer_fixtures import fake_model_dirs
    from tests.fakes import BrightnessScorer, Models

    settings = settings.model_copy(update={"default_model": "v1"})
    fake_model_dirs(settings, ["v1"])
    with TestClient(create_app(settings, scorer_factory=Models({"v1": BrightnessScorer("v1")}))) as client:
        app: Pipeline = client.app.state.pipeline  # type: ignore[attr-defined]
        token = tokens.create_token(app, station="s1", by="erin")

        def post(i: int) -> int:
            r = client.post(
                "/api/v1/inspections",
                data={"station": "s1"},
                files={"image": (f"p{i}.png", png_bytes(30, seed=i), "image/png")},
                headers={"Authorization": f"Bearer {token}"},
            )
            return r.status_code

        assert post(1) == 201
        assert tokens.list_tokens(app)[0].last_used is not None
        tokens.revoke_token(app, token_id=tokens.list_tokens(app)[0].id, by="erin")
        assert post(2) == 401
