"""The "Inspectors" tab in a real browser (issue 11, quality control): a gold item planted blind in an
inspector's queue and answered wrongly with the keyboard shows up in their accuracy with the miss
listed; an item two inspectors labelled differently appears for adjudication, and the label the
engineer picks becomes its final label (history and exports)."""

from __future__ import annotations

from typing import Any

import pytest

from inspection import store
from inspection.services import accounts, export, quality, review
from tests.e2e.conftest import PASSWORD, REPO, Server, ingest_file, login

pytestmark = pytest.mark.e2e
STATION = "e2e-qc"
ARTIFACT = REPO / "test-artifacts" / "inspectors-tab.png"


def _screen_id(page: Any, not_id: int = -1) -> int:
    """The item on the review screen once its image is loaded (and is not `not_id`)."""
    page.wait_for_function(
        """(notId) => { const i = document.querySelector('.rv-img');
            return i && i.getAttribute('src') && i.complete && i.naturalWidth > 0
                   && Number(i.dataset.id) !== notId; }""",
        arg=not_id,
    )
    return int(page.evaluate("() => Number(document.querySelector('.rv-img').dataset.id)"))


def _set_up(server: Server) -> int:
    """Four items waiting at the station (human_only: all blind), one more labelled and marked gold."""
    app = server.pipeline
    for name in ("insp2", "qcinsp"):  # qcinsp: an inspector holding no claim from other tests
        if accounts.get_user(app, name=name) is None:
            accounts.add_user(app, name=name, role="inspector", password=PASSWORD)
    # The review screen serves the oldest item of any station, and the session's server holds other
    # tests' items: label those first, so qcinsp's next work (and so the plant's station) is this station's.
    while (task := review.claim_next(app, inspector="qc-drain")) is not None:
        review.submit_label(app, inspection_id=task.inspection_id, inspector="qc-drain", label="ok")
    gold = ingest_file(server, STATION, server.images[10]).inspection.id
    for image in server.images[11:15]:
        ingest_file(server, STATION, image)
    task = review.claim_next(app, inspector="vera", station=STATION)
    assert task is not None and task.inspection_id == gold
    review.submit_label(app, inspection_id=gold, inspector="vera", label="scratch")
    quality.mark_gold(app, inspection_id=gold, by="eng1", reason="e2e: confirmed under the microscope")
    quality.set_rates(app, station=STATION, gold_rate=1.0, double_rate=0.0, by="eng1", reason="e2e")
    return gold


def test_gold_miss_and_adjudication_in_the_inspectors_tab(server: Server, new_page: Any) -> None:
    app = server.pipeline
    gold = _set_up(server)

    # 1. The inspector's first item is the planted gold copy: blind like any other; they answer OK (wrong).
    page = new_page()
    login(page, server.url, "qcinsp")
    plant = _screen_id(page)
    with app.read() as s:
        assert store.is_plant(s, inspection_id=plant)
    assert page.locator(".rv-blind").count() >= 1 and page.locator('[data-testid="score"]').count() == 0
    page.keyboard.press("o")
    first = _screen_id(page, not_id=plant)  # the next real item, claimed by qcinsp

    # 2. From now on items are labelled twice: qcinsp says scratch, insp2 (another session) says ok.
    quality.set_rates(app, station=STATION, gold_rate=0.0, double_rate=1.0, by="eng1", reason="e2e")
    page.keyboard.press("x")
    _screen_id(page, not_id=first)
    task = review.claim_next(app, inspector="insp2", station=STATION)
    assert task is not None and task.inspection_id == first  # back in the queue, never to qcinsp again
    review.submit_label(app, inspection_id=first, inspector="insp2", label="ok")

    # 3. The engineer sees the miss and the disagreement, and adjudicates.
    eng = new_page()
    login(eng, server.url, "eng1", next_path="/engineer/")
    eng.wait_for_selector("#policy-current")
    eng.get_by_role("tab", name="Inspectors").click()
    eng.locator("#qc-refresh").click()
    eng.wait_for_function("(g) => document.querySelector('#qc-misses').innerText.includes('#' + g)", arg=gold)
    inspectors = eng.locator("#qc-inspectors").inner_text()
    assert "qcinsp" in inspectors and "0/1" in inspectors
    misses = eng.locator("#qc-misses").inner_text()
    assert "qcinsp" in misses and "scratch" in misses
    eng.wait_for_function("() => document.querySelector('#qc-adjudication').innerText.includes('insp2: ok')")
    eng.locator("#qc-adj-id input").fill(str(first))
    eng.locator("#qc-adj-id input").press("Enter")
    eng.wait_for_function("() => document.querySelector('#qc-adj-labels').innerText.includes('qcinsp')")
    eng.wait_for_selector("#qc-adj-image img")
    eng.locator("#qc-adj-reason textarea").fill("e2e: a real scratch under raking light")
    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    eng.screenshot(path=str(ARTIFACT), full_page=True)
    eng.locator("#qc-adj-scratch").click()
    eng.wait_for_selector("#qc-adj-done")
    assert f"#{first}" in eng.locator("#qc-adj-done").inner_text()
    eng.wait_for_function("() => !document.querySelector('#qc-adjudication').innerText.includes('insp2: ok')")

    # The adjudicated label is the item's final label everywhere.
    with app.read() as s:
        final = store.active_review(s, inspection_id=first)
        assert final is not None and (final.label, final.kind, final.inspector) == ("scratch", "adjudication", "eng1")
        (row,) = store.labelled_history(s, inspection_ids=[first])
        assert row.label == "scratch"
    (rec,) = [r for r in export.iter_records(app, export.ExportFilter(station=STATION)) if r.inspection_id == first]
    assert (rec.label, rec.review_kind, rec.labels_given) == ("scratch", "adjudication", 2)
    rep = quality.qc_report(app, station=STATION)
    qcinsp = next(q for q in rep.inspectors if q.inspector == "qcinsp")
    assert (qcinsp.gold.events, qcinsp.gold.trials) == (0, 1) and qcinsp.misses[0].gold_item == gold
