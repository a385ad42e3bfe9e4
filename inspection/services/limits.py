"""Admission control for full-resolution decodes: at most N images in flight and at most a pixel
budget together. A small PNG can decode to 7000x7000 (150 MB of RGB); 16 of them at once took a
server to 4.6 GB. The header gives the pixel count before any decoding, so an upload is admitted
or refused (`Overloaded` → 503 + Retry-After) before it costs memory."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from inspection.services.errors import Overloaded


class DecodeLimiter:
    """A counting semaphore with a pixel budget. `peak_*` record the most ever in flight (for tests
    and for operators wondering whether the limits bite)."""

    def __init__(self, *, slots: int, budget_pixels: int, wait_seconds: float) -> None:
        self.slots = slots
        self.budget_pixels = budget_pixels
        self.wait_seconds = wait_seconds
        self._cond = threading.Condition()
        self.in_flight = 0
        self.pixels_in_flight = 0
        self.peak_in_flight = 0
        self.peak_pixels = 0
        self.refused = 0

    def _fits(self, pixels: int) -> bool:
        return self.in_flight < self.slots and self.pixels_in_flight + pixels <= self.budget_pixels

    @contextmanager
    def slot(self, pixels: int) -> Iterator[None]:
        """Hold one decode slot and `pixels` of the budget for the block; Overloaded after waiting
        `wait_seconds` for room. An image bigger than the whole budget is admitted alone (max_pixels
        refuses it later if it is truly too big)."""
        need = min(max(pixels, 0), self.budget_pixels)
        deadline = time.monotonic() + self.wait_seconds
        with self._cond:
            while not self._fits(need):
                left = deadline - time.monotonic()
                if left <= 0:
                    self.refused += 1
                    raise Overloaded(
                        f"server busy: {self.in_flight} images being decoded "
                        f"({self.pixels_in_flight / 1e6:.0f} Mpx in flight), retry shortly",
                        retry_after=max(1, round(self.wait_seconds) or 1),
                    )
                self._cond.wait(left)
            self.in_flight += 1
            self.pixels_in_flight += need
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            self.peak_pixels = max(self.peak_pixels, self.pixels_in_flight)
        try:
            yield
        finally:
            with self._cond:
                self.in_flight -= 1
                self.pixels_in_flight -= need
                self._cond.notify_all()
