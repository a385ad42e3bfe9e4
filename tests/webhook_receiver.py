"""A real HTTP webhook receiver on 127.0.0.1 (a free port) for the alarm notification tests."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Receiver:
    url: str
    statuses: list[int] = field(default_factory=list)  # answers to the first requests; then 200
    delay: float = 0.0  # seconds each answer takes
    received: list[dict[str, Any]] = field(default_factory=list)  # bodies answered 2xx
    attempts: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wait_for(self, n: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.received) >= n:
                    return list(self.received)
            time.sleep(0.02)
        with self.lock:
            return list(self.received)


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802  (http.server's name)
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            time.sleep(receiver.delay)
            with receiver.lock:
                receiver.attempts += 1
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                if 200 <= status < 300:
                    receiver.received.append(json.loads(body))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_args: Any) -> None:  # quiet test output
            return

    return Handler


@contextmanager
def webhook_receiver(*, statuses: list[int] | None = None, delay: float = 0.0) -> Iterator[Receiver]:
    receiver = Receiver(url="", statuses=list(statuses or []), delay=delay)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
