"""The Content-Security-Policy and framing headers in a real browser: both Gradio screens load and
work under them, and the browser reports no CSP violation."""

from __future__ import annotations

from typing import Any

from inspection.api.security import SECURITY_HEADERS
from tests.e2e.conftest import Server, ingest_file, login


def test_gradio_screens_run_under_the_content_security_policy(server: Server, new_page: Any) -> None:
    ingest_file(server, "csp", server.images[0])
    page = new_page()
    violations: list[str] = []
    page.on("console", lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None)
    login(page, server.url, "eng1", next_path="/engineer/")
    page.get_by_role("tab", name="Reports").click()
    resp = page.goto(f"{server.url}/review/", wait_until="networkidle")
    assert resp is not None
    for name, value in SECURITY_HEADERS.items():
        assert resp.headers.get(name.lower()) == value, name
    page.wait_for_selector(".gradio-container", timeout=20_000)
    page.wait_for_timeout(1500)  # let lazy components and the queue connection start
    assert violations == []
