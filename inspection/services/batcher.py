"""Micro-batching: forward passes of concurrent requests collected into one batch.

A request hands its prepared item to `MicroBatcher.submit` and waits on the returned future; one worker
thread takes the first waiting item, collects more until it has `max_items` or `max_wait_s` has passed
since the first, and runs them as one call. With max_items = 1 nothing waits (and ingest does not even
create a batcher): the default, because on 2 cores a batch of 4 saved nothing measurable (README).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Generic, TypeVar

In = TypeVar("In")
Out = TypeVar("Out")

# A worker thread idle this long exits (a Pipeline that is dropped leaves no thread behind); the next
# submit starts a new one (seconds).
IDLE_EXIT_SECONDS = 30.0


class MicroBatcher(Generic[In, Out]):
    def __init__(self, run: Callable[[Sequence[In]], Sequence[Out]], *, max_items: int, max_wait_s: float,
                 name: str = "batcher") -> None:
        if max_items < 1 or max_wait_s < 0:
            raise ValueError("max_items must be >= 1 and max_wait_s >= 0")
        self._run = run
        self.max_items = max_items
        self.max_wait_s = max_wait_s
        self._name = name
        self._queue: queue.Queue[tuple[In, Future[Out]]] = queue.Queue()
        self._lock = threading.Lock()
        self._worker: threading.Thread | None = None
        self.batches: list[int] = []  # sizes of the last batches run (kept short; for tests and benchmarks)

    def submit(self, item: In) -> Future[Out]:
        future: Future[Out] = Future()
        self._queue.put((item, future))
        with self._lock:  # a worker that is exiting for idleness has re-checked the queue under this lock
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._loop, name=self._name, daemon=True)
                self._worker.start()
        return future

    def _loop(self) -> None:
        while True:
            try:
                first = self._queue.get(timeout=IDLE_EXIT_SECONDS)
            except queue.Empty:
                with self._lock:
                    if self._queue.empty():
                        self._worker = None
                        return
                continue
            self._run_batch(self._collect(first))

    def _collect(self, first: tuple[In, Future[Out]]) -> list[tuple[In, Future[Out]]]:
        batch = [first]
        deadline = time.monotonic() + self.max_wait_s
        while len(batch) < self.max_items:
            left = deadline - time.monotonic()
            try:
                batch.append(self._queue.get(timeout=left) if left > 0 else self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _run_batch(self, batch: list[tuple[In, Future[Out]]]) -> None:
        # a caller that timed out has cancelled its future: its item is not run
        live = [(item, fut) for item, fut in batch if fut.set_running_or_notify_cancel()]
        if not live:
            return
        self.batches = [*self.batches[-99:], len(live)]
        try:
            outputs = self._run([item for item, _ in live])
            if len(outputs) != len(live):
                raise RuntimeError(f"batch of {len(live)} gave {len(outputs)} outputs")
        except BaseException as exc:  # every waiting request learns of the failure (→ a person)
            for _, fut in live:
                fut.set_exception(exc)
            return
        for (_, fut), out in zip(live, outputs, strict=True):
            fut.set_result(out)
