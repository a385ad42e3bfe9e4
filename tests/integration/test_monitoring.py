"""Issue 10 acceptance through the real paths: real images through `services.ingest.inspect` on a
real SQLite database, the model artifact's reference in model.json, a real HTTP webhook receiver on
127.0.0.1, the interlock through `services.policies`; the long unshifted stream through
`monitoring.record_sample` with precomputed metrics; alarm open/clear on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from inspection import store
from inspection.config import Settings
from inspection.core.alarms import DEFAULT_RULES
from inspection.core.domain import AutomationLevel
from inspection.services import context, events, ingest, monitoring, policies, review, webhook
from tests.fakes import Models
from tests.monitor_stream import SteadyScorer, frame, record_stream, write_model_with_reference
from tests.webhook_receiver import Receiver, webhook_receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as rx:
        yield rx
    webhook.close_all(timeout=1.0)  # the sender threads outlive a pipeline: stop them with the receiver


def _pipeline(settings: Settings, receiver: Receiver) -> context.Pipeline:
    s = settings.model_copy(update={"alarm_webhook_url": receiver.url})
    return context.Pipeline.create(s, scorer_factory=Models({"baseline": SteadyScorer()}))


def _alarm_events(app: context.Pipeline, station: str) -> list[events.EventRecord]:
    return [
        e for e in events.list_events(app, station=station, limit=10_000) if e.kind.startswith(("alarm.", "interl"))
    ]


def test_a_darker_line_fires_the_brightness_alarm_notifies_and_drops_partial_to_ai_assist(
    settings: Settings, receiver: Receiver
) -> None:
    write_model_with_reference(settings.models_dir)
    with _pipeline(settings, receiver) as app:
        policies.set_policy(app, station="s1", by="eve", reason="t", level="partial", pass_below=0.1, reject_above=0.9)
        monitoring.set_rules(app, station="s1", rules=replace(DEFAULT_RULES, interlock=True), by="eve", reason="opt in")
        for i in range(500):
            assert ingest.inspect(app, data=frame(i), station="s1").inspection.route == "auto_pass"
        assert monitoring.evaluate_station(app, station="s1") == []  # the normal line raises nothing
        for i in range(500, 800):
            ingest.inspect(app, data=frame(i, exposure=0.75), station="s1")
        changes = monitoring.evaluate_station(app, station="s1")

        fired = {c.alarm.rule: c for c in changes if c.kind == "fired"}
        assert "brightness" in fired, [c.alarm.rule for c in changes]
        alarm = fired["brightness"].alarm
        ev = alarm.evidence
        assert ev["p_value"] < ev["threshold"] and ev["detail"]["window_median"] < ev["detail"]["reference_median"]
        assert ev["reference"] == "model baseline" and 500 < ev["items_seen"] <= 700  # caught within 200 items
        assert "score distribution" not in fired  # the model's output did not move
        # the interlock: exactly one level down, by "monitor", the alarm as the reason
        demoted = [c for c in changes if c.demoted_to is not None]
        assert len(demoted) == 1 and demoted[0].demoted_to is AutomationLevel.AI_ASSIST
        policy = policies.get_policy(app, station="s1")
        assert policy.level is AutomationLevel.AI_ASSIST
        last = policies.list_policies(app, station="s1")[-1]
        assert last.created_by == "monitor" and f"alarm #{demoted[0].alarm.id}" in last.reason
        # stored events with the evidence
        kinds = [e.kind for e in _alarm_events(app, "s1")]
        assert kinds.count("interlock.demoted") == 1 and kinds.count("alarm.fired") == len(fired)
        stored = next(
            e for e in _alarm_events(app, "s1") if e.kind == "alarm.fired" and e.detail["alarm_id"] == alarm.id
        )
        assert stored.detail["evidence"]["p_value"] == ev["p_value"]
        # the webhook receiver got every firing
        got = receiver.wait_for(len(fired))
        assert {p["alarm"]["rule"] for p in got} == set(fired) and {p["event"] for p in got} == {"alarm.fired"}

        report = monitoring.monitor_report(app, station="s1", since=datetime(2000, 1, 1, tzinfo=UTC))
        assert report.n_items == 800 and sum(p.n for p in report.series) == 800
        assert report.interlock is not None and report.interlock.demoted_to == "ai_assist"
        assert report.interlock.alarm_id == demoted[0].alarm.id
        assert any(d.rule == "brightness" and d.breached for d in report.drift)
        assert "brightness" in report.reference_bands and report.escape_label_free is not None
        drifted, reference = monitoring.alarm_examples(app, alarm_id=alarm.id, n=4)
        assert len(drifted) == 4 and all(p.is_file() for p in drifted)
        # the reference is the model's (its images are not here): the station's items before the window
        assert len(reference) == 4 and all(p.is_file() for p in reference) and not set(reference) & set(drifted)

        # an engineer restores the level deliberately; the banner goes away
        monitoring.restore_level(app, station="s1", level="partial", by="eve", reason="lamp replaced")
        assert policies.get_policy(app, station="s1").level is AutomationLevel.PARTIAL
        report = monitoring.monitor_report(app, station="s1")
        assert report.interlock is not None and report.interlock.demoted_to is None


def test_2000_unshifted_items_raise_nothing(settings: Settings, receiver: Receiver) -> None:
    with _pipeline(settings, receiver) as app:
        record_stream(app, station="s2", n=500, seed=1)
        ref = monitoring.set_reference_window(app, station="s2", first=500, by="eve", reason="installation")
        assert ref.n == 500
        record_stream(app, station="s2", n=2000, seed=2, start=datetime(2025, 3, 2, tzinfo=UTC))
        assert monitoring.evaluate_station(app, station="s2") == []
        report = monitoring.monitor_report(app, station="s2", since=datetime(2000, 1, 1, tzinfo=UTC))
        assert report.alarms == [] and _alarm_events(app, "s2") == []
        tested = {d.rule: d for d in report.drift if d.skipped is None}
        assert {"brightness", "feature drift", "unjudgeable share", "score distribution"} <= set(tested)
        assert tested["brightness"].n_window == 200 and not any(d.breached for d in tested.values())
        with app.read() as s:
            state = store.monitor_states(s, stations=["s2"])[0]
        assert state.n_seen == 2500  # every look due was made (the false-alarm budget counts them)
    assert receiver.received == []


def test_alarm_opens_once_and_clears_when_the_line_recovers(db_settings: Settings, receiver: Receiver) -> None:
    with _pipeline(db_settings, receiver) as app:
        record_stream(app, station="s3", n=500, seed=3)
        monitoring.set_reference_window(app, station="s3", first=500, by="eve", reason="installation")
        record_stream(app, station="s3", n=300, seed=4, brightness_shift=-30.0)
        # two evaluators at once (two server processes): the database opens the alarm once
        results: list[list[monitoring.AlarmChange]] = []
        threads = [
            threading.Thread(target=lambda: results.append(monitoring.evaluate_station(app, station="s3")))
            for _ in range(2)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        fired = [c for r in results for c in r if c.kind == "fired" and c.alarm.rule == "brightness"]
        assert len(fired) == 1
        with app.read() as s:
            assert [a.rule for a in store.open_alarms(s, station="s3")] == ["brightness"]
        assert monitoring.evaluate_station(app, station="s3") == []  # nothing new: nothing changes

        record_stream(app, station="s3", n=400, seed=5)  # back to normal
        changes = monitoring.evaluate_station(app, station="s3")
        assert [(c.kind, c.alarm.rule) for c in changes] == [("cleared", "brightness")]
        with app.read() as s:
            assert store.open_alarms(s, station="s3") == []
            row = store.get_alarm(s, alarm_id=fired[0].alarm.id)
        assert row is not None and row.cleared_at is not None and not row.evidence["cleared"]["detail"].get("skipped")
        kinds = [e.kind for e in reversed(_alarm_events(app, "s3"))]
        assert kinds == ["alarm.fired", "alarm.cleared"]
        assert [p["event"] for p in receiver.wait_for(2)] == ["alarm.fired", "alarm.cleared"]
        assert policies.get_policy(app, station="s3").level is AutomationLevel.HUMAN_ONLY  # interlock off: untouched


def test_no_reference_says_so_and_monitoring_off_records_nothing(settings: Settings, tmp_path: Path) -> None:
    with context.Pipeline.create(settings, scorer_factory=Models({"baseline": SteadyScorer()})) as app:
        policies.set_policy(app, station="s4", by="eve", reason="t", level="partial", pass_below=0.1)
        for i in range(3):
            ingest.inspect(app, data=frame(i), station="s4")
        assert monitoring.evaluate_station(app, station="s4") == []
        report = monitoring.monitor_report(app, station="s4")
        assert report.n_items == 3 and report.reference_source.startswith("no reference")
        assert report.reference_bands == {}
    off = settings.model_copy(update={"monitoring": False})
    with context.Pipeline.create(off, scorer_factory=Models({"baseline": SteadyScorer()})) as app:
        ingest.inspect(app, data=frame(99), station="s4")
        assert monitoring.monitor_report(app, station="s4").n_items == 3  # the 4th item left no sample


def test_a_labelled_reference_window_calibrates_the_label_free_escape_estimate(
    settings: Settings, receiver: Receiver
) -> None:
    write_model_with_reference(settings.models_dir)
    with _pipeline(settings, receiver) as app:
        # shadow: every phone goes to a person who does not see the model's output, so every label is blind
        policies.set_policy(app, station="s1", by="eve", reason="t", level="shadow")
        for i in range(120):
            ingest.inspect(app, data=frame(i), station="s1")
        for n in range(120):
            task = review.claim_next(app, inspector="ann", station="s1")
            assert task is not None
            # the model's scores are all below 0.011, yet one phone in ten is scratched: overconfident
            review.submit_label(app, inspection_id=task.inspection_id, inspector="ann",
                                label="scratch" if n % 10 == 0 else "ok")  # fmt: skip
        out = monitoring.set_reference_window(app, station="s1", first=120, by="eve", reason="installation")
        assert out.n == 120
        policies.set_policy(app, station="s1", by="eve", reason="t", level="partial", pass_below=0.1, reject_above=0.9)
        for i in range(120, 220):
            ingest.inspect(app, data=frame(i), station="s1")
        escape = monitoring.monitor_report(app, station="s1").escape_label_free

    assert escape is not None and "isotonic" in escape.method
    assert escape.rate is not None and 0.05 <= escape.rate <= 0.15  # ~0.1, not the model's ~0.006


def test_the_report_of_one_model_version_covers_only_the_items_it_decided(settings: Settings, tmp_path: Path) -> None:
    with context.Pipeline.create(settings, scorer_factory=Models({"baseline": SteadyScorer()})) as app:
        record_stream(app, station="s1", n=30, seed=1)  # decided by model "m"
        everything = monitoring.monitor_report(app, station="s1", since=datetime(2025, 1, 1, tzinfo=UTC))
        only_m = monitoring.monitor_report(app, station="s1", since=datetime(2025, 1, 1, tzinfo=UTC), model="m")
        other = monitoring.monitor_report(app, station="s1", since=datetime(2025, 1, 1, tzinfo=UTC), model="cand")
    assert everything.n_items == only_m.n_items == 30 and other.n_items == 0
