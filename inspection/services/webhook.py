"""Alarm notifications to a webhook: POST JSON from a background thread, never from the caller's.

`notify` puts the payload on a bounded queue and returns at once; one sender thread per URL posts
the payloads in order, retrying connection errors, time-outs, 429 and 5xx with exponential back-off
(0.5, 1, 2 … at most 30 s; 6 tries). Another 4xx is the receiver refusing this payload: logged and
dropped, no retry. When the queue is full (the receiver has been down for a long time) a new payload
is dropped with a log line: the alarm itself is in the database and the event log either way.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

__all__ = ["WebhookNotifier", "close_all", "notifier_for"]

log = logging.getLogger("inspection.webhook")

Post = Callable[[str, dict[str, Any], float], int]  # (url, payload, timeout) -> HTTP status


def _post_httpx(url: str, payload: dict[str, Any], timeout: float) -> int:
    return httpx.post(url, json=payload, timeout=timeout).status_code


class WebhookNotifier:
    """One URL, one bounded queue, one daemon sender thread (started on the first payload)."""

    def __init__(
        self,
        url: str,
        *,
        queue_size: int = 1000,
        attempts: int = 6,
        first_delay: float = 0.5,
        max_delay: float = 30.0,
        timeout: float = 5.0,
        post: Post = _post_httpx,
    ) -> None:
        self.url = url
        self.attempts = attempts
        self.first_delay = first_delay
        self.max_delay = max_delay
        self.timeout = timeout
        self._post = post
        self._queue: queue.Queue[dict[str, Any]] = queue.Queue(maxsize=queue_size)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.sent = 0
        self.dropped = 0

    def notify(self, payload: dict[str, Any]) -> bool:
        """Queue one payload; False (and a log line) when the queue is full. Never blocks."""
        self._start()
        try:
            self._queue.put_nowait(payload)
        except queue.Full:
            self.dropped += 1
            log.warning("webhook queue full (%d): dropped %s", self._queue.maxsize, payload.get("event", "payload"))
            return False
        return True

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued payload was sent or given up (tests, shutdown); False on time-out."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.02)
        return not self._queue.unfinished_tasks

    def close(self, timeout: float = 2.0) -> None:
        """Stop the sender (payloads still queued after `timeout` are lost)."""
        self.flush(timeout)
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)

    def _start(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._stop.clear()
                self._thread = threading.Thread(target=self._run, name="alarm-webhook", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                payload = self._queue.get(timeout=0.5)
            except queue.Empty:
                continue
            try:
                self._deliver(payload)
            finally:
                self._queue.task_done()

    def _deliver(self, payload: dict[str, Any]) -> None:
        delay = self.first_delay
        for attempt in range(1, self.attempts + 1):
            problem = self._try(payload)
            if problem is None:
                self.sent += 1
                return
            if problem.startswith("refused"):
                log.error("webhook %s %s: giving up", self.url, problem)
                return
            if attempt == self.attempts or self._stop.wait(delay):
                log.error("webhook %s: %s; giving up after %d tries", self.url, problem, attempt)
                return
            log.warning("webhook %s: %s; retry %d in %g s", self.url, problem, attempt + 1, delay)
            delay = min(delay * 2, self.max_delay)

    def _try(self, payload: dict[str, Any]) -> str | None:
        """None when delivered; else why ("refused …" when retrying cannot help)."""
        try:
            status = self._post(self.url, payload, self.timeout)
        except (httpx.HTTPError, OSError) as exc:
            return f"{type(exc).__name__}: {exc}"
        if 200 <= status < 300:
            return None
        if status == 429 or status >= 500:
            return f"HTTP {status}"
        return f"refused with HTTP {status}"


# One notifier per URL per process: the sender thread and its queue outlive any single evaluation.
_NOTIFIERS: dict[str, WebhookNotifier] = {}
_NOTIFIERS_LOCK = threading.Lock()


def notifier_for(url: str) -> WebhookNotifier | None:
    """The process's notifier of `url`; None when no URL is configured."""
    url = (url or "").strip()
    if not url:
        return None
    with _NOTIFIERS_LOCK:
        if url not in _NOTIFIERS:
            _NOTIFIERS[url] = WebhookNotifier(url)
        return _NOTIFIERS[url]


def close_all(timeout: float = 2.0) -> None:
    with _NOTIFIERS_LOCK:
        notifiers = list(_NOTIFIERS.values())
        _NOTIFIERS.clear()
    for n in notifiers:
        n.close(timeout)
