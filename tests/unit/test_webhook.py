"""The alarm webhook notifier against a real HTTP receiver on 127.0.0.1: delivery, retries with
back-off, no retry on a refusal, a full queue drops instead of blocking, notify never waits."""

from __future__ import annotations

import time

from inspection.services.webhook import WebhookNotifier, notifier_for
from tests.webhook_receiver import webhook_receiver


def _notifier(url: str, **kw: float) -> WebhookNotifier:
    return WebhookNotifier(url, first_delay=0.05, max_delay=0.2, timeout=2.0, **kw)  # type: ignore[arg-type]


def test_payloads_arrive_in_order() -> None:
    with webhook_receiver() as rx:
        n = _notifier(rx.url)
        try:
            assert n.notify({"event": "alarm.fired", "id": 1})
            assert n.notify({"event": "alarm.cleared", "id": 1})
            assert [p["event"] for p in rx.wait_for(2)] == ["alarm.fired", "alarm.cleared"]
            assert n.flush(5) and n.sent == 2
        finally:
            n.close()


def test_server_errors_are_retried_with_back_off_until_delivered() -> None:
    with webhook_receiver(statuses=[503, 500, 429]) as rx:
        n = _notifier(rx.url)
        try:
            t0 = time.monotonic()
            n.notify({"event": "alarm.fired"})
            assert rx.wait_for(1) == [{"event": "alarm.fired"}]
            assert rx.attempts == 4
            assert time.monotonic() - t0 >= 0.05 + 0.1 + 0.2  # the back-off waited (doubling, capped)
        finally:
            n.close()


def test_a_refusal_is_not_retried_and_the_next_payload_still_goes() -> None:
    with webhook_receiver(statuses=[400]) as rx:
        n = _notifier(rx.url)
        try:
            n.notify({"event": "bad"})
            n.notify({"event": "good"})
            assert rx.wait_for(1) == [{"event": "good"}]
            assert n.flush(5) and rx.attempts == 2
        finally:
            n.close()


def test_a_dead_receiver_gives_up_after_the_last_try() -> None:
    with webhook_receiver() as rx:
        url = rx.url
    n = WebhookNotifier(url, attempts=3, first_delay=0.01, timeout=0.5)
    try:
        n.notify({"event": "alarm.fired"})
        assert n.flush(10)  # given up, not stuck
        assert n.sent == 0
    finally:
        n.close()


def test_notify_never_blocks_and_a_full_queue_drops() -> None:
    with webhook_receiver(delay=0.5) as rx:
        n = WebhookNotifier(rx.url, queue_size=2, timeout=5.0)
        try:
            t0 = time.perf_counter()
            results = [n.notify({"event": "alarm.fired", "i": i}) for i in range(10)]
            assert time.perf_counter() - t0 < 0.2  # a slow receiver never slows the caller
            assert results.count(False) >= 6 and n.dropped == results.count(False)
            assert rx.wait_for(1, timeout=5)[0]["i"] == 0
        finally:
            n.close(timeout=5)


def test_no_url_means_no_notifier() -> None:
    assert notifier_for("") is None
    assert notifier_for("  ") is None
