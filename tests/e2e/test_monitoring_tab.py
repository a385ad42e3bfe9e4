"""The Monitoring tab in a real browser (issue 10): real generated phone images go through the real
pipeline (the e2e model, real monitoring samples), a darkened stream fires the real brightness rule and
the interlock, and the tab shows its plots, the alarm, the alarm's example images, the banner and the
restore action, at 1366x768; the engineer sets the station's reference window and changes an alarm
rule (checked as a diff, saved with a reason) from the tab."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from inspection.core.alarms import AlarmRule, AlarmRuleSet, Severity
from inspection.core.domain import AutomationLevel
from inspection.services import ingest, monitoring, policies
from tests.e2e.conftest import REPO, Server, login

pytestmark = pytest.mark.e2e

STATION = "e2e-monitor"
N_NORMAL = 40
SCREENSHOT = REPO / "test-artifacts" / "monitoring-tab.png"
PLOTS = ("traffic", "decisions", "scores", "inputs", "features", "drift", "escape")


@dataclass(frozen=True)
class Monitored:
    normal: list[Path]
    alarm: monitoring.AlarmOut


def _jpeg(image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return data.tobytes()


def _read(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert image is not None, path
    return image


def _ingest(server: Server, data: bytes, name: str) -> None:
    ingest.inspect(server.pipeline, data=data, station=STATION, source_name=name)


@pytest.fixture(scope="module")
def monitored(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Monitored]:
    """40 normal phones (the station's reference window), then the same 40 at 55 % exposure, evaluated
    under a small-window brightness rule with the interlock on: the alarm fires and partial drops."""
    from inspection.vision import synth

    app = server.pipeline
    root = tmp_path_factory.mktemp("monitor-phones")
    synth.generate(root, count=N_NORMAL, seed=314, size=(1920, 1080), progress=False)
    normal = sorted(root.glob("*/*.jpg"))
    policies.set_policy(
        app,
        station=STATION,
        by="test",
        reason="e2e: monitored station",
        level="partial",
        pass_below=0.2,
        reject_above=0.9,
        audit_rate=0.0,
    )
    # Windows of 40 looked at every 20 items; 50 false alarms per 100k items gives alpha 0.01 per look.
    rule = AlarmRule(
        "brightness", "brightness", 40, 20, false_alarm_per_100k=50.0, severity=Severity.WARNING, demote=True
    )
    monitoring.set_rules(
        app, station=STATION, rules=AlarmRuleSet((rule,), interlock=True), by="test", reason="e2e: small windows"
    )
    for path in normal:
        _ingest(server, path.read_bytes(), path.name)
    monitoring.set_reference_window(app, station=STATION, first=N_NORMAL, by="test", reason="e2e: first items")
    for path in normal:
        dark = cv2.convertScaleAbs(_read(path), alpha=0.55)
        _ingest(server, _jpeg(dark), f"dark-{path.name}")
    monitoring.evaluate_station(app, station=STATION)  # the server's background loop may have been first
    report = monitoring.monitor_report(app, station=STATION)
    fired = [a for a in report.alarms if a.metric == "brightness"]
    assert fired, f"no brightness alarm after a darkened stream: {report.drift}"
    assert policies.get_policy(app, station=STATION).level is AutomationLevel.AI_ASSIST
    yield Monitored(normal, fired[0])


def _open_tab(page: Any, server: Server) -> None:
    login(page, server.url, "eng1", next_path="/engineer/")
    page.wait_for_selector("#policy-current")
    page.get_by_role("tab", name="Monitoring").click()
    box = page.locator("#monitor-station input")
    box.click()
    box.fill(STATION)
    box.press("Enter")
    page.wait_for_function(
        "(s) => (document.querySelector('#monitor-summary')?.innerText || '').includes(s)", arg=STATION
    )


def _plot_boxes(page: Any) -> list[dict[str, Any]]:
    """Each plot's image: loaded size and whether it fits inside its plot element (nothing cut)."""
    return list(
        page.evaluate(
            """(ids) => ids.map((id) => {
                const el = document.querySelector('#monitor-plot-' + id);
                const img = el && el.querySelector('img');
                if (!img) return {id, ok: false};
                const a = el.getBoundingClientRect(), b = img.getBoundingClientRect();
                return {id, ok: img.complete && img.naturalWidth > 0, w: img.naturalWidth,
                        h: img.naturalHeight, shown: b.width, fits: b.left >= a.left - 1 && b.right <= a.right + 1};
            })""",
            list(PLOTS),
        )
    )


def _summary_items(page: Any) -> int:
    text = page.inner_text("#monitor-summary")
    return int(text.split("UTC:")[1].split("items")[0].strip().strip("*"))


def test_monitoring_tab_shows_plots_alarm_examples_and_interlock(
    server: Server, monitored: Monitored, browser: Any
) -> None:
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    try:
        page = context.new_page()
        page.set_default_timeout(30_000)
        _open_tab(page, server)

        page.wait_for_function(
            "(ids) => ids.every((id) => { const i = document.querySelector('#monitor-plot-' + id + ' img');"
            " return i && i.complete && i.naturalWidth > 0; })",
            arg=list(PLOTS),
        )
        boxes = _plot_boxes(page)
        assert all(b["ok"] and b["w"] > 200 and b["h"] > 150 for b in boxes), boxes
        assert all(b["fits"] and b["shown"] > 200 for b in boxes), boxes
        assert _summary_items(page) >= 2 * N_NORMAL

        alarms = page.locator("#monitor-alarms")
        # Gradio keeps a hidden copy of the table for measuring: only visible cells count.
        alarm_cell = alarms.get_by_text(str(monitored.alarm.id), exact=True).filter(visible=True).first
        alarm_cell.wait_for()
        assert "brightness" in alarms.inner_text()
        banner = page.locator('[data-testid="interlock-banner"]')
        banner.wait_for()
        assert "from partial to ai_assist" in banner.inner_text()

        alarm_cell.click()
        page.wait_for_function(
            "() => ['#monitor-drifted', '#monitor-reference'].every((g) => "
            "[...document.querySelectorAll(g + ' img')].some((i) => i.complete && i.naturalWidth > 0))"
        )
        assert f"Alarm #{monitored.alarm.id}" in page.inner_text("#monitor-alarm-note")
        assert "reference window v1" in page.inner_text("#monitor-alarm-note")
        _open_rules(page)
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), full_page=True)

        _check_auto_refresh(page, server, monitored)
        _check_restore(page, server)
        _check_reference_window(page, server)
        _check_rule_change(page, server)
    finally:
        context.close()


def _check_auto_refresh(page: Any, server: Server, monitored: Monitored) -> None:
    """One more item appears in the summary without a click (the tab's timer)."""
    before = _summary_items(page)
    _ingest(server, _jpeg(_read(monitored.normal[0])), "late.jpg")  # re-encoded: new bytes
    deadline = time.monotonic() + 25
    while _summary_items(page) <= before:
        assert time.monotonic() < deadline, "the tab did not refresh by itself"
        time.sleep(0.5)


def _check_restore(page: Any, server: Server) -> None:
    """Restore needs a reason; with one, the level goes back and the banner goes away."""
    assert page.locator("#monitor-level input").input_value() == "partial"  # the level before the demotion
    page.locator("#monitor-reason textarea").fill("")
    page.locator("#monitor-restore-btn").click()
    page.get_by_text("a reason is required").first.wait_for()
    assert policies.get_policy(server.pipeline, station=STATION).level is AutomationLevel.AI_ASSIST
    page.locator("#monitor-reason textarea").fill("e2e: camera exposure fixed")
    page.locator("#monitor-restore-btn").click()
    page.locator('[data-testid="interlock-banner"]').wait_for(state="detached")
    assert policies.get_policy(server.pipeline, station=STATION).level is AutomationLevel.PARTIAL


def _open_rules(page: Any) -> None:
    """Open the "Rules and reference" section: the station's rules v1 (set by the fixture) are loaded."""
    page.locator("#monitor-rules-section").get_by_text("Rules and reference").first.click()
    page.wait_for_function(
        "() => (document.querySelector('#monitor-rules-summary')?.innerText || '').includes('rules v1')"
    )
    page.locator("#monitor-rules").get_by_text("brightness", exact=True).filter(visible=True).first.wait_for()


def _check_reference_window(page: Any, server: Server) -> None:
    """The first 30 items after installation become the station's reference (version 2)."""
    page.locator("#monitor-ref-first input").fill("30")
    page.locator("#monitor-ref-reason textarea").fill("e2e: the first items after installation")
    page.locator("#monitor-ref-set").click()
    page.wait_for_function(
        "() => (document.querySelector('#monitor-reference-current')?.innerText || '').includes('v2')"
    )
    ref = monitoring.get_reference(server.pipeline, station=STATION)
    assert ref is not None and (ref.version, ref.n, ref.created_by) == (2, 30, "eng1")
    assert "30 items" in page.inner_text("#monitor-reference-current")


def _edit_cell(page: Any, table: str, *, row: int, col: int, new: str) -> None:
    """Type a new value into a cell of an editable gr.Dataframe (double-click opens its editor)."""
    cell = page.locator(f'{table} [data-testid="cell-{row}-{col}"]')
    cell.dblclick()
    box = cell.locator("input, textarea").first
    box.fill(new)
    box.press("Enter")
    page.wait_for_function(  # the cell's text (its innerText also holds the menu button's)
        "([sel, v]) => (document.querySelector(sel)?.innerText || '').trim() === v",
        arg=[f'{table} [data-testid="cell-{row}-{col}"] span.text', new],
    )


def _check_rule_change(page: Any, server: Server) -> None:
    """Halve the brightness rule's false-alarm budget and switch the interlock off: the diff shows
    both, Save needs a reason, and the stored version 2 says who and why."""
    _edit_cell(page, "#monitor-rules", row=0, col=4, new="25")  # false alarms / 100k: 50 -> 25
    page.locator("#monitor-interlock").get_by_text("off", exact=True).click()
    page.locator("#monitor-rules-check").click()
    diff = page.locator("#monitor-rules-diff")
    diff.get_by_text("false_alarm_per_100k 50.0 -> 25.0", exact=False).first.wait_for()
    assert "interlock: on -> off" in diff.inner_text()
    assert monitoring.get_rules(server.pipeline, station=STATION).version == 1  # checked, not stored
    page.locator("#monitor-rules-save").click()
    page.get_by_text("a reason is required: say why the rules change").first.wait_for()
    page.locator("#monitor-rules-reason textarea").fill("e2e: fewer false alarms at this lamp")
    page.locator("#monitor-rules-save").click()
    page.wait_for_function(
        "() => (document.querySelector('#monitor-rules-summary')?.innerText || '').includes('rules v2')"
    )
    rules = monitoring.get_rules(server.pipeline, station=STATION)
    assert (rules.version, rules.created_by, rules.reason) == (2, "eng1", "e2e: fewer false alarms at this lamp")
    assert rules.rules["interlock"] is False and rules.rules["rules"][0]["false_alarm_per_100k"] == 25.0
    history = page.inner_text("#monitor-rules-history")
    assert "e2e: fewer false alarms at this lamp" in history and "e2e: small windows" in history
