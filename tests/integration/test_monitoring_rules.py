"""Issue 10, the engineer's side of monitoring and the software metrics: alarm rules checked as a diff,
saved with who/why against the version looked at, their history; the station's reference window;
example images when the reference is the model's; the report's series spanning the data; and every
software metric in /metrics, parsed with prometheus_client's own parser. Real SQLite databases,
real HTTP through FastAPI's TestClient."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from inspection import store
from inspection.api.app import create_app
from inspection.config import Settings
from inspection.core.alarms import DEFAULT_RULES, AlarmRuleSet, diff_rule_sets
from inspection.core.domain import Localisation
from inspection.core.scoring import Scored
from inspection.services import context, ingest, monitoring, policies, tokens
from inspection.services.accounts import add_user
from inspection.services.errors import InputError
from tests.fakes import BrightnessScorer, Models, level_for, png
from tests.monitor_stream import SteadyScorer, frame, record_stream
from ui import engineer_monitor_plots as plots
from ui import engineer_monitor_rules as rules_ui

DAY = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def app(settings: Settings) -> Iterator[context.Pipeline]:
    with context.Pipeline.create(settings, scorer_factory=Models({"baseline": SteadyScorer()})) as pipe:
        yield pipe


def test_a_rule_change_is_checked_as_a_diff_then_saved_against_the_version_seen(app: context.Pipeline) -> None:
    table = rules_ui.rule_rows(DEFAULT_RULES.to_json())
    assert rules_ui.rules_from_table(table, rules_ui.interlock_choice(None)) == DEFAULT_RULES.to_json()
    table[0][4] = "0.5"  # brightness: ten times the false-alarm budget
    table[0][7] = False  # ... and no longer demotes
    table.append(["", "", "", "", "", "", "", False, ""])  # an empty added row is ignored
    edited = rules_ui.rules_from_table(table, "on")

    preview = monitoring.preview_rules(app, station="s1", rules=edited)
    assert preview.base_version == 0 and monitoring.get_rules(app, station="s1").version == 0  # nothing stored
    assert preview.changes == [
        "interlock: default (on at full only) -> on",
        "~ brightness: false_alarm_per_100k 0.05 -> 0.5; demote True -> False",
    ]
    saved = monitoring.set_rules(app, station="s1", rules=preview.rules, by="eve", reason="noisy lamp",
                                 base_version=preview.base_version)  # fmt: skip
    assert saved.version == 1 and saved.changes == preview.changes and saved.created_by == "eve"
    # a second engineer saving against v0 (what they looked at) is refused: they have not seen v1
    with pytest.raises(InputError, match="changed since you looked"):
        monitoring.set_rules(app, station="s1", rules=DEFAULT_RULES, by="bob", reason="x", base_version=0)
    fewer = replace(DEFAULT_RULES, rules=DEFAULT_RULES.rules[1:], interlock=False)
    monitoring.set_rules(app, station="s1", rules=fewer, by="bob", reason="no lamp rule", base_version=1)
    history = monitoring.rule_history(app, station="s1")
    assert [(h.version, h.created_by, h.reason) for h in history] == [(2, "bob", "no lamp rule"),
                                                                       (1, "eve", "noisy lamp")]  # fmt: skip
    assert history[0].changes[0] == "interlock: on -> off" and history[0].changes[1].startswith("- brightness:")
    assert rules_ui.history_rows(history)[1][4] == "; ".join(preview.changes)

    with pytest.raises(InputError, match="not a number"):
        rules_ui.rules_from_table([["x", "brightness", "ten", 5, 1, "", "warning", False, ""]], None)
    bad = rules_ui.rules_from_table([["x", "glare", 10, 5, 1, "", "warning", False, ""]], None)
    with pytest.raises(InputError, match="unknown metric 'glare'"):
        monitoring.preview_rules(app, station="s1", rules=bad)
    assert diff_rule_sets(DEFAULT_RULES, DEFAULT_RULES) == []
    assert diff_rule_sets(None, AlarmRuleSet(())) == ["interlock: default (on at full only)"]


def test_the_reference_window_form_sets_a_versioned_reference(app: context.Pipeline) -> None:
    assert monitoring.get_reference(app, station="s2") is None
    record_stream(app, station="s2", n=300, seed=1, start=DAY)
    args = rules_ui.reference_args(rules_ui.FIRST_N, 200, "2025-03-01", "")
    assert args == {"first": 200, "since": DAY.replace(hour=0)}
    ref = monitoring.set_reference_window(app, station="s2", by="eve", reason="installation", **args)
    assert ref.n == 200 and ref.version == 1
    args = rules_ui.reference_args(rules_ui.DATE_RANGE, None, "2025-03-01 08:00", "2025-03-01T08:01:40+00:00")
    ref = monitoring.set_reference_window(app, station="s2", by="eve", reason="first 100 s", **args)
    got = monitoring.get_reference(app, station="s2")
    assert got is not None and (got.version, got.n, got.created_by, got.reason) == (2, 100, "eve", "first 100 s")
    assert "window **v2**, 100 items" in rules_ui.reference_text(got, "s2")
    with pytest.raises(InputError, match="not a date"):
        rules_ui.reference_args(rules_ui.DATE_RANGE, None, "yesterday", "")
    with pytest.raises(InputError, match="since < until"):
        monitoring.set_reference_window(app, station="s2", by="eve", reason="x", **rules_ui.reference_args(
            rules_ui.DATE_RANGE, None, "2025-03-02", "2025-03-01"))  # fmt: skip


def test_examples_without_a_reference_window_come_from_before_the_drifted_window(app: context.Pipeline) -> None:
    policies.set_policy(app, station="s3", by="eve", reason="t", level="partial", pass_below=0.1)
    for i in range(60):
        ingest.inspect(app, data=frame(i), station="s3")
    with app.write() as s:  # an alarm on the last 20 items, as the evaluation stores it
        ids = [r.id for r in store.samples_in_range(s, station="s3", limit=100)]
        row = store.open_alarm(s, row=store.AlarmRow(
            station="s3", rule="brightness", metric="brightness", severity="warning", opened_at=app.clock(),
            evidence={}, first_sample_id=ids[40], last_sample_id=ids[59]))  # fmt: skip
        assert row is not None and row.id is not None
        alarm_id = row.id
    ex = monitoring.alarm_example_set(app, alarm_id=alarm_id, n=4)
    assert len(ex.drifted) == 4 and len(ex.reference) == 4 and "before the drifted window" in ex.reference_caption
    assert not set(ex.drifted) & set(ex.reference) and all(p.is_file() for p in ex.reference)


def test_the_series_spans_the_data_not_the_whole_window(app: context.Pipeline) -> None:
    record_stream(app, station="s4", n=90, seed=2, start=app.clock() - timedelta(seconds=100))
    r = monitoring.monitor_report(app, station="s4", since=app.clock() - timedelta(hours=8))
    assert sum(p.n for p in r.series) == 90
    assert r.series[0].t >= app.clock() - timedelta(seconds=130) and len(r.series) >= 4  # 10-s buckets
    lo, hi = plots.time_span(r)
    span = hi - lo
    assert span < 300 / 86400  # minutes, not 8 hours
    assert "raw" in plots.score_figure(r).get_suptitle().lower()


class FailsOnWhite(BrightnessScorer):
    """The brightness scorer, except that a white image makes the model fail."""

    def score(self, images: Sequence[np.ndarray], *, localisation: Localisation | None = None) -> list[Scored]:
        if any(float(np.mean(img)) > 250 for img in images):
            raise RuntimeError("model crashed")
        return super().score(images, localisation=localisation)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    s = settings.model_copy(update={"expose_metrics": True})
    models = Models({"baseline": FailsOnWhite()})
    with TestClient(create_app(s, scorer_factory=models), raise_server_exceptions=False) as c:
        yield c


def _families(client: TestClient) -> dict[str, Any]:
    r = client.get("/metrics")
    assert r.status_code == 200
    return {f.name: f for f in text_string_to_metric_families(r.text)}


def _value(family: Any, name: str, **labels: str) -> float | None:
    return next((s.value for s in family.samples if s.name == name and s.labels == labels), None)


def test_metrics_export_throughput_latency_errors_queue_and_memory(client: TestClient) -> None:
    pipe: context.Pipeline = client.app.state.pipeline  # type: ignore[attr-defined]
    policies.set_policy(pipe, station="s1", by="eve", reason="t", level="partial", pass_below=0.1, reject_above=0.9)
    auth = {"Authorization": f"Bearer {tokens.create_token(pipe, station='s1')}"}
    before = _families(client)
    assert _value(before["inspection_errors"], "inspection_errors_total", kind="model") == 0  # 0, not missing

    def post(level: int) -> int:
        files = {"image": ("a.png", png(level), "image/png")}
        return client.post("/api/v1/inspections", files=files, data={"station": "s1"}, headers=auth).status_code

    assert post(level_for(0.02)) == 201 and post(level_for(0.5)) == 201  # auto-passed, and one for a person
    assert post(255) == 201  # the model failed: the item went to a person
    assert client.get("/api/v1/monitoring/report").status_code == 401  # a 4xx is no server error

    m = _families(client)
    types = {name: m[name].type for name in m}
    assert types["inspection_items"] == "counter" and _value(
        m["inspection_items"], "inspection_items_total", station="s1", route="auto_pass") == 1  # fmt: skip
    assert types["inspection_http_request_duration_seconds"] == "histogram"
    assert types["inspection_ingest_duration_seconds"] == "histogram"
    assert _value(m["inspection_ingest_duration_seconds"], "inspection_ingest_duration_seconds_count") == 3
    assert _value(m["inspection_errors"], "inspection_errors_total", kind="model") == 1
    assert types["inspection_queue_depth"] == "gauge" and types["inspection_queue_oldest_age_seconds"] == "gauge"
    assert _value(m["inspection_queue_depth"], "inspection_queue_depth", station="s1", status="queued") == 2
    age = _value(m["inspection_queue_oldest_age_seconds"], "inspection_queue_oldest_age_seconds", station="s1",
                 status="queued")  # fmt: skip
    assert age is not None and age >= 0
    assert (_value(m["process_resident_memory_bytes"], "process_resident_memory_bytes") or 0) > 0
    assert _value(m["inspection_errors"], "inspection_errors_total", kind="http_5xx") == 0


def _boom(*args: object, **kwargs: object) -> None:
    raise RuntimeError("a bug")


def test_a_5xx_answer_counts_as_an_error(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    pipe: context.Pipeline = client.app.state.pipeline  # type: ignore[attr-defined]
    add_user(pipe, name="eve", role="engineer", password="a-long-password")
    monkeypatch.setattr(monitoring, "monitor_report", _boom)
    r = client.get("/api/v1/monitoring/report", auth=("eve", "a-long-password"))
    assert r.status_code == 500
    m = _families(client)
    assert _value(m["inspection_errors"], "inspection_errors_total", kind="http_5xx") == 1
