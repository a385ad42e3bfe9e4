"""Engineer screen, "Export" tab: export labelled inspections and download them as one zip.

The handler checks the engineer role on the server first; the export is written under the system
temporary folder (where Gradio may serve files from) and old zips there are removed.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import gradio as gr

from inspection.services import errors, export, validation
from ui.context import Permission, UiContext
from ui.engineer_common import handler_messages

KEEP_SECONDS = 3600
_messages = handler_messages(
    export.ExportError,
    errors.InputError,
    where="export",
    internal="internal error: the export failed; the server log has the details",
)


def _when(value: str | None, name: str) -> datetime | None:
    if not value or not value.strip():
        return None
    try:
        dt = datetime.fromisoformat(value.strip())
    except ValueError:
        raise gr.Error(f"{name} must be an ISO date such as 2025-03-01") from None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt


def work_dir() -> Path:
    root = Path(tempfile.gettempdir()) / "inspection-exports"
    root.mkdir(parents=True, exist_ok=True)
    now = time.time()
    for old in root.iterdir():  # exports are downloads, not storage
        try:
            if now - old.stat().st_mtime > KEEP_SECONDS:
                shutil.rmtree(old, ignore_errors=True)
        except OSError:
            continue
    return root


def build(ctx: UiContext) -> None:
    app = ctx.pipeline
    gr.Markdown(
        "Export labelled inspections: **imagefolder** (torchvision / FiftyOne class folders), **csv** / "
        "**jsonl** (every decision field), **coco** (highlighted regions as boxes), **labelstudio** "
        "(tasks with the model's predictions). The download is one zip."
    )
    with gr.Row():
        fmt = gr.Dropdown(list(export.FORMATS), value="csv", label="Format", elem_id="export-format")
        source = gr.Radio(list(export.SOURCES), value="all", label="Labels", elem_id="export-source")
    with gr.Row():
        station = gr.Textbox(label="Station (empty: all)", elem_id="export-station")
        since = gr.Textbox(label="Since (ISO date)", elem_id="export-since")
        until = gr.Textbox(label="Until (ISO date)", elem_id="export-until")
        model_version = gr.Textbox(label="Model version (empty: any)", elem_id="export-model")
    go = gr.Button("Export", variant="primary", elem_id="export-go")
    summary = gr.Markdown(elem_id="export-summary")
    download = gr.File(label="Download", interactive=False, elem_id="export-file")

    @_messages
    def run(f: str, src: str, st: str, s: str, u: str, mv: str, request: gr.Request) -> tuple[str, Any]:
        user = ctx.require(request, Permission.ENGINEER)
        flt = export.ExportFilter(
            station=validation.validate_station(st) if st and st.strip() else None,
            since=_when(s, "Since"),
            until=_when(u, "Until"),
            source=src,
            model_version=mv.strip() or None if mv else None,
        )
        zpath, res = export.export_zip(app, fmt=f, flt=flt, work=work_dir(), actor=user.name)
        text = f"{res.records} records exported as **{f}** in {res.seconds:.1f} s" + (
            f" ({res.skipped} without a usable image left out)" if res.skipped else ""
        )
        return text, str(zpath)

    go.click(run, inputs=[fmt, source, station, since, until, model_version], outputs=[summary, download])
