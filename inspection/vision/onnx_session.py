"""One way to open an ONNX Runtime session on the CPU: the scoring network, the localiser network and
training's frozen part all run beside other work on a small machine, so each says its own thread count."""

from __future__ import annotations

from typing import Any


def cpu_session(model: str | bytes, *, threads: int, spinning: bool | None = None) -> Any:
    """An InferenceSession of `model` (a path or the serialised bytes) on `threads` intra-op threads, one
    inter-op thread, errors only in the log. spinning: whether idle intra-op threads busy-wait (None: ONNX
    Runtime's default)."""
    import onnxruntime as ort  # heavy: loaded only when a network runs through it

    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, threads)
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    if spinning is not None:
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
