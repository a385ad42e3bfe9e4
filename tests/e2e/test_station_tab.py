"""The "Station setup" tab in a real browser: a region of interest drawn with two clicks on the station's
newest image and saved as a version, a gate override, a recalibration refused for too few blind labels
(the reason on the page), and the versions listed with who and why."""

from __future__ import annotations

from typing import Any

import pytest

from inspection.core.domain import LocalisationMode
from inspection.core.gate import MetricRange
from inspection.services import review, stations
from tests.e2e.conftest import Server, ingest_file, login, shot

pytestmark = pytest.mark.e2e
STATION = "e2e-setup"


def _number(page: Any, elem: str) -> float:
    return float(page.locator(f"#{elem} input[type=number]").input_value())


def _open_station_tab(server: Server, new_page: Any, station: str) -> Any:
    """An engineer's page on the Station setup tab with `station` chosen."""
    page = new_page()
    login(page, server.url, "eng1", next_path="/engineer/")
    page.wait_for_selector("#policy-current")
    page.get_by_role("tab", name="Station setup").click()
    dropdown = page.locator("#setup-station input")
    dropdown.click()
    dropdown.fill(station)
    dropdown.press("Enter")
    page.wait_for_function("(s) => document.querySelector('#station-current').innerText.includes(s)", arg=station)
    return page


def test_engineer_draws_a_region_overrides_the_gate_and_is_refused_recalibration(server: Server, new_page: Any) -> None:
    for image in server.images[:2]:
        ingest_file(server, STATION, image)  # unconfigured: human_only, the image is stored all the same
    page = _open_station_tab(server, new_page, STATION)
    img = page.locator("#station-sample img")
    img.wait_for()
    page.wait_for_function("() => { const i = document.querySelector('#station-sample img');"
                           " return i && i.complete && i.naturalWidth > 0; }")  # fmt: skip
    box = img.bounding_box()
    assert box is not None
    # two opposite corners: 20 %/30 % from the top-left, then 70 %/80 %
    img.click(position={"x": box["width"] * 0.2, "y": box["height"] * 0.3})
    page.wait_for_timeout(300)  # the first corner is drawn before the second click
    img.click(position={"x": box["width"] * 0.7, "y": box["height"] * 0.8})
    page.wait_for_function("() => Number(document.querySelector('#station-roi-w input[type=number]').value) > 0")
    assert _number(page, "station-roi-x") == pytest.approx(0.2, abs=0.03)
    assert _number(page, "station-roi-w") == pytest.approx(0.5, abs=0.03)
    assert page.get_by_label("fixed region of interest (draw it on the image)").is_checked()
    page.locator("#station-reason textarea").fill("e2e: fixed jig, camera sees the tray")
    page.locator("#station-save-localisation").click()
    page.wait_for_function(
        "() => document.querySelector('#station-current').innerText.includes('fixed region of interest')"
    )
    shot(page, "engineer-station-roi")
    setup = stations.get_setup(server.pipeline, station=STATION)
    assert setup.version == 1 and setup.localisation.mode is LocalisationMode.ROI
    assert setup.localisation.roi is not None and setup.localisation.roi[1] == pytest.approx(0.3, abs=0.03)

    page.locator("#station-gate-lo textarea, #station-gate-lo input").first.fill("5")
    page.locator("#station-reason textarea").fill("e2e: dark table")
    page.locator("#station-gate-save").click()
    page.wait_for_function("() => document.querySelector('#station-current').innerText.includes('brightness 5')")
    assert stations.get_setup(server.pipeline, station=STATION).gate == {"brightness": MetricRange(5.0, None)}

    page.locator("#station-recalibrate").click()
    page.wait_for_function(
        "() => document.querySelector('#station-recal-result').innerText.includes('too few blind labels')"
    )
    page.get_by_text("e2e: dark table").first.wait_for()  # the versions table, newest first
    history = page.locator("#station-history").inner_text()
    assert "e2e: fixed jig" in history and "eng1" in history
    shot(page, "engineer-station-history")
    assert [r.created_by for r in stations.setup_history(server.pipeline, station=STATION)] == ["eng1", "eng1"]


def test_engineer_switches_the_review_highlight_default_with_a_reason(server: Server, new_page: Any) -> None:
    station = "e2e-highlight"
    ingest_file(server, station, server.images[2])
    page = _open_station_tab(server, new_page, station)
    current = page.locator("#station-highlight-current")
    current.get_by_text("never changed").wait_for()
    box = page.locator("#station-highlight input[type=checkbox]")
    assert not box.is_checked()

    box.check()
    page.locator("#station-reason textarea").fill("")
    page.locator("#station-highlight-save").click()
    page.get_by_text("a reason is required").first.wait_for()  # refused: nothing stored
    assert review.highlight_default(server.pipeline, station=station) is False
    page.locator(".toast-close").first.click()  # the error toast would hide the screenshot's corner

    page.locator("#station-reason textarea").fill("e2e: new inspectors miss thin scratches")
    page.locator("#station-highlight-save").click()
    current.get_by_text("e2e: new inspectors miss thin scratches").wait_for()
    assert "Highlight on" in current.inner_text() and "eng1" in current.inner_text()
    assert box.is_checked()
    current.scroll_into_view_if_needed()
    shot(page, "engineer-station-highlight")
    assert review.highlight_default(server.pipeline, station=station) is True
    (change,) = review.highlight_changes(server.pipeline, station=station)
    assert (change.by, change.highlight, change.old) == ("eng1", True, False)
    assert change.reason == "e2e: new inspectors miss thin scratches"
