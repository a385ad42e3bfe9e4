"""Monitoring tab, "Rules and reference" section: a station's alarm rules as an editable table with
the interlock switch (checked, shown as a diff, then saved with a required reason), its reference
window ("the first N items after a date" or a date range), and every rule-set version with who, why
and what it changed. Each save is a new version (`services.monitoring`).

Handlers are thin (one service call, then formatting) and check the engineer role first. The section
loads when the station changes or on its own "Reload" button, never on the tab's timer: a refresh
must not overwrite a table being edited.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import gradio as gr

from inspection.core.alarms import Severity
from inspection.services import monitoring
from inspection.services.errors import InputError
from ui.context import Permission, UiContext
from ui.engineer_common import messages, station_filter

RULE_HEADERS = ["name", "metric", "window", "step", "false alarms / 100k", "threshold", "severity", "demote",
                "min items", "minutes"]  # fmt: skip
# The optional numbers are text: a number column shows an absent value as 0, and a threshold of 0 would
# make a statistical rule invalid (it has a false-alarm budget instead).
RULE_TYPES: list[Any] = ["str", "str", "number", "number", "str", "str", "str", "bool", "number", "str"]
RULE_KEYS = ("name", "metric", "window", "step", "false_alarm_per_100k", "threshold", "severity", "demote",
             "min_items", "minutes")  # fmt: skip
HISTORY_HEADERS = ["version", "when (UTC)", "by", "reason", "changes"]
INTERLOCK = {"default (on at full only)": None, "on": True, "off": False}
FIRST_N, DATE_RANGE = "the first N items (from a date)", "a date range"
PICK_STATION = "Pick one station above to see and change its rules and reference."


# ---------------------------------------------------------------------------------------------
# Formatting and parsing (pure)


def _cell(key: str, v: Any) -> Any:
    if key == "demote":
        return bool(v)
    if key in ("false_alarm_per_100k", "threshold", "minutes"):
        return "" if v is None else f"{v:g}"
    return "" if v is None else v


def rule_rows(rules: dict[str, Any]) -> list[list[Any]]:
    """`AlarmRuleSet.to_json()` as table rows (empty cells for absent fields)."""
    return [[_cell(k, r.get(k)) for k in RULE_KEYS] for r in rules.get("rules", [])]


def interlock_choice(value: bool | None) -> str:
    return next(label for label, v in INTERLOCK.items() if v is value)


def _blank(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or (isinstance(v, str) and not v.strip())


def _number(v: Any, what: str, *, integer: bool) -> float | int | None:
    if _blank(v):
        return None
    try:
        x = float(str(v).strip()) if not isinstance(v, int | float) else float(v)
    except ValueError:
        raise InputError(f"{what}: {v!r} is not a number") from None
    if integer:
        if not x.is_integer():
            raise InputError(f"{what}: {v!r} must be a whole number")
        return int(x)
    return x


def _flag(v: Any) -> bool:
    return v if isinstance(v, bool) else str(v).strip().lower() in ("true", "1", "yes", "on", "x")


def _rule(row: Sequence[Any]) -> dict[str, Any] | None:
    """One table row as rule JSON; None for an empty row (a row the engineer added and left blank)."""
    cells = dict(zip(RULE_KEYS, list(row) + [None] * (len(RULE_KEYS) - len(row)), strict=True))
    if all(_blank(cells[k]) for k in RULE_KEYS if k != "demote"):
        return None
    name = "" if _blank(cells["name"]) else str(cells["name"]).strip()
    out: dict[str, Any] = {"name": name, "metric": "" if _blank(cells["metric"]) else str(cells["metric"]).strip()}
    for key in ("window", "step", "min_items"):
        n = _number(cells[key], f"rule {name!r}: {key}", integer=True)
        if n is not None:
            out[key] = n
    for key in ("false_alarm_per_100k", "threshold", "minutes"):
        x = _number(cells[key], f"rule {name!r}: {key}", integer=False)
        if x is not None:
            out[key] = x
    out["severity"] = Severity.WARNING.value if _blank(cells["severity"]) else str(cells["severity"]).strip().lower()
    out["demote"] = _flag(cells["demote"])
    return out


def rules_from_table(rows: Sequence[Sequence[Any]] | None, interlock: str | None) -> dict[str, Any]:
    """The edited table and interlock choice as `AlarmRuleSet` JSON (validated by the service)."""
    rules = [r for row in rows or [] if (r := _rule(row)) is not None]
    return {"rules": rules, "interlock": INTERLOCK.get(interlock or "")}


def diff_markdown(p: monitoring.RulesPreview) -> str:
    if not p.changes:
        return "No change: the table equals the rules in force."
    lines = "\n".join(f"- `{c}`" for c in p.changes)
    return (
        f"**Changes against v{p.base_version}** (false-alarm budget of the new set: "
        f"{p.false_alarm_per_100k:g} per 100,000 items):\n\n{lines}\n\nGive a reason and press **Save rules**."
    )


def rules_summary(r: monitoring.RuleSetOut) -> str:
    who = f"by {r.created_by} at {_when(r.created_at)} UTC: {r.reason}" if r.version else "the default rules"
    lock = interlock_choice(r.rules.get("interlock"))
    return (
        f"**{r.station}** rules **v{r.version}** ({who}) · interlock: **{lock}** · false-alarm budget "
        f"{r.false_alarm_per_100k:g} per 100,000 items (sum over the statistical rules)"
    )


def history_rows(history: Sequence[monitoring.RuleSetOut]) -> list[list[Any]]:
    return [[r.version, _when(r.created_at), r.created_by or "", r.reason or "", "; ".join(r.changes)]
            for r in history]  # fmt: skip


def reference_text(ref: monitoring.ReferenceOut | None, station: str) -> str:
    if ref is None:
        return f"**{station}** reference: the production model's (no reference window set)."
    return (
        f"**{station}** reference: window **v{ref.version}**, {ref.n} items ({ref.source}), "
        f"set by {ref.created_by} at {_when(ref.created_at)} UTC: {ref.reason}"
    )


def _when(t: datetime | None) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%S") if t is not None else ""


def parse_date(text: str | None, what: str) -> datetime | None:
    """An ISO date or date-time typed by the engineer; UTC unless it says otherwise. Blank: None."""
    if _blank(text):
        return None
    try:
        t = datetime.fromisoformat(str(text).strip())
    except ValueError:
        raise InputError(f"{what}: {text!r} is not a date (YYYY-MM-DD or YYYY-MM-DD HH:MM)") from None
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


def reference_args(mode: str | None, first: float | None, since: str | None, until: str | None) -> dict[str, Any]:
    """The form as `set_reference_window` keywords: first N (with an optional since) or since/until."""
    start = parse_date(since, "from")
    if mode == DATE_RANGE:
        return {"since": start, "until": parse_date(until, "until")}
    n = _number(first, "first N items", integer=True)
    if n is None:
        raise InputError("give the number of items (e.g. 2000)")
    return {"first": n, "since": start}


# ---------------------------------------------------------------------------------------------
# Layout and handlers


@dataclass
class _Section:
    summary: gr.Markdown
    table: gr.Dataframe
    interlock: gr.Radio
    check: gr.Button
    reload: gr.Button
    diff: gr.Markdown
    reason: gr.Textbox
    save: gr.Button
    preview: gr.State
    reference: gr.Markdown
    mode: gr.Radio
    first: gr.Number
    since: gr.Textbox
    until: gr.Textbox
    ref_reason: gr.Textbox
    set_ref: gr.Button
    history: gr.Dataframe

    def load_outputs(self) -> list[Any]:
        return [self.summary, self.table, self.interlock, self.diff, self.preview, self.save, self.reference,
                self.history]  # fmt: skip


def _layout() -> _Section:
    summary = gr.Markdown(PICK_STATION, elem_id="monitor-rules-summary")
    table = gr.Dataframe(
        headers=RULE_HEADERS, datatype=RULE_TYPES, interactive=True, type="array",
        elem_id="monitor-rules", label="Alarm rules (edit cells; add a row for a new rule, clear its name to drop it)",
    )  # fmt: skip
    with gr.Row():
        interlock = gr.Radio(list(INTERLOCK), value=None, label="Demotion interlock", elem_id="monitor-interlock")
        check = gr.Button("Check changes", elem_id="monitor-rules-check")
        reload = gr.Button("Reload", size="sm", elem_id="monitor-rules-reload")
    diff = gr.Markdown(elem_id="monitor-rules-diff")
    with gr.Row():
        reason = gr.Textbox(label="Reason (required, stored with the rules)", elem_id="monitor-rules-reason", scale=3)
        save = gr.Button("Save rules", variant="primary", visible=False, elem_id="monitor-rules-save")
    preview = gr.State(None)  # the checked change (RulesPreview JSON): Save stores exactly this
    gr.Markdown("#### Reference window")
    reference = gr.Markdown(elem_id="monitor-reference-current")
    with gr.Row():
        mode = gr.Radio([FIRST_N, DATE_RANGE], value=FIRST_N, label="Reference is", elem_id="monitor-ref-mode")
        first = gr.Number(2000, precision=0, label="N items", elem_id="monitor-ref-first")
        since = gr.Textbox(label="from (UTC, YYYY-MM-DD[ HH:MM]; optional for N items)", elem_id="monitor-ref-since")
        until = gr.Textbox(label="until (UTC; date range only)", elem_id="monitor-ref-until")
    with gr.Row():
        ref_reason = gr.Textbox(label="Reason (required)", elem_id="monitor-ref-reason", scale=3)
        set_ref = gr.Button("Set reference window", elem_id="monitor-ref-set")
    history = gr.Dataframe(headers=HISTORY_HEADERS, interactive=False, wrap=True, max_height=300,
                           column_widths=["8%", "14%", "8%", "20%", "50%"], elem_id="monitor-rules-history",
                           label="Rule-set versions (newest first)")  # fmt: skip
    return _Section(summary, table, interlock, check, reload, diff, reason, save, preview, reference, mode, first,
                    since, until, ref_reason, set_ref, history)  # fmt: skip


def _load(ctx: UiContext, name: str | None) -> tuple[Any, ...]:
    """Everything the section shows for the station (`_Section.load_outputs` order)."""
    station = station_filter(name)
    if station is None:
        return PICK_STATION, [], None, "", None, gr.update(visible=False), "", []
    app = ctx.pipeline
    rules = monitoring.get_rules(app, station=station)
    return (
        rules_summary(rules),
        rule_rows(rules.rules),
        interlock_choice(rules.rules.get("interlock")),
        "",
        None,
        gr.update(visible=False),
        reference_text(monitoring.get_reference(app, station=station), station),
        history_rows(monitoring.rule_history(app, station=station)),
    )


def _station(name: str | None) -> str:
    station = station_filter(name)
    if station is None:
        raise gr.Error(PICK_STATION)
    return station


def build(ctx: UiContext, station: gr.Dropdown) -> None:
    """The section (call inside the Monitoring tab), following the tab's station dropdown."""
    app = ctx.pipeline
    v = _layout()

    @messages
    def load(name: str | None, request: gr.Request) -> tuple[Any, ...]:
        ctx.require(request, Permission.ENGINEER)
        return _load(ctx, name)

    station.change(load, [station], v.load_outputs())
    v.reload.click(load, [station], v.load_outputs())

    @messages
    def check(name: str | None, rows: Any, lock: str | None, request: gr.Request) -> tuple[Any, ...]:
        ctx.require(request, Permission.ENGINEER)
        p = monitoring.preview_rules(app, station=_station(name), rules=rules_from_table(rows, lock))
        return diff_markdown(p), p.model_dump(mode="json") if p.changes else None, gr.update(visible=bool(p.changes))

    v.check.click(check, [station, v.table, v.interlock], [v.diff, v.preview, v.save])

    @messages
    def save(
        name: str | None, rows: Any, lock: str | None, checked: dict[str, Any] | None, why: str, request: gr.Request
    ) -> tuple[Any, ...]:
        user = ctx.require(request, Permission.ENGINEER)
        st = _station(name)
        if not checked or checked.get("station") != st:
            raise gr.Error("press Check changes first: the change is saved as you saw it")
        if monitoring.preview_rules(app, station=st, rules=rules_from_table(rows, lock)).rules != checked["rules"]:
            raise gr.Error("the table changed after the check: press Check changes again")
        if not (why or "").strip():
            raise gr.Error("a reason is required: say why the rules change")
        out = monitoring.set_rules(app, station=st, rules=checked["rules"], by=user.name, reason=why.strip(),
                                   base_version=int(checked["base_version"]))  # fmt: skip
        gr.Info(f"{st}: alarm rules v{out.version} saved")
        return (*_load(ctx, st), "")

    v.save.click(save, [station, v.table, v.interlock, v.preview, v.reason], [*v.load_outputs(), v.reason])

    @messages
    def set_reference(
        name: str | None, mode: str, first: float | None, since: str, until: str, why: str, request: gr.Request
    ) -> tuple[Any, ...]:
        user = ctx.require(request, Permission.ENGINEER)
        st = _station(name)
        if not (why or "").strip():
            raise gr.Error("a reason is required: say why this is the reference")
        args = reference_args(mode, first, since, until)
        ref = monitoring.set_reference_window(app, station=st, by=user.name, reason=why.strip(), **args)
        gr.Info(f"{st}: reference window v{ref.version} of {ref.n} items")
        return reference_text(ref, st), ""

    ref_inputs: list[Any] = [station, v.mode, v.first, v.since, v.until, v.ref_reason]
    v.set_ref.click(set_reference, ref_inputs, [v.reference, v.ref_reason])
