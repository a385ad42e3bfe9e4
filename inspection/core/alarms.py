"""Alarm rules on the drift signals, and the demotion step of the interlock. Pure: stdlib, numpy, scipy.

A rule watches one metric (`core.drift.KNOWN_METRICS`). Input, output and feature rules are
statistical: the engineer sets a false-alarm budget per 100,000 unshifted items and the rule tests
the last `window` items every `step` items at alpha_look = budget · step / 100,000 (the arithmetic is
in `core.drift`'s docstring). Concept rules (disagreement, ece, escape_upper, escape_label_free_upper)
compare a label-based quantity with an absolute `threshold`: there is no null distribution to spend a
budget on, and the number that matters (e.g. "escapes may exceed 3 %") is what the engineer knows.

The interlock (services) acts on firing rules with `demote=True`: one level down per breach
(`demote`), never up.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any

from inspection.core.concept import Concept
from inspection.core.domain import AutomationLevel
from inspection.core.drift import (
    CONCEPT_METRICS,
    KNOWN_METRICS,
    DriftResult,
    MonitorSample,
    Reference,
    alpha_per_look,
    check_window,
    look_ends,
    metric_kind,
)

__all__ = [
    "DEFAULT_RULES",
    "AlarmRule",
    "AlarmRuleSet",
    "RuleOutcome",
    "Severity",
    "concept_check",
    "demote",
    "diff_rule_sets",
    "evaluate",
    "first_alarm",
    "scan",
]


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


_RULE_KEYS = {
    "name",
    "metric",
    "window",
    "step",
    "false_alarm_per_100k",
    "threshold",
    "severity",
    "demote",
    "min_items",
    "minutes",
}
_REQUIRED = ("name", "metric", "window", "step")


def _positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


@dataclass(frozen=True)
class AlarmRule:
    """One rule. Exactly one of `false_alarm_per_100k` (statistical metrics) and `threshold` (concept
    metrics). `min_items`: statistical rules test only windows with at least this many items holding
    the metric (0 = a full window); concept rules need this many labelled items (0 = 1). `minutes`: a
    time-based window as well: a look sees only its last `window` items received within `minutes` of the
    newest (a slow line then tests fewer items: set `min_items` below `window`). The looks still come
    every `step` items, so the false-alarm arithmetic is unchanged."""

    name: str
    metric: str
    window: int
    step: int
    false_alarm_per_100k: float | None = None
    threshold: float | None = None
    severity: Severity = Severity.WARNING
    demote: bool = False
    min_items: int = 0
    minutes: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError("a rule needs a non-empty name")
        if self.metric not in KNOWN_METRICS:
            raise ValueError(
                f"rule {self.name!r}: unknown metric {self.metric!r}; known: {', '.join(sorted(KNOWN_METRICS))}"
            )
        _positive_int(f"rule {self.name!r}: window", self.window)
        _positive_int(f"rule {self.name!r}: step", self.step)
        if isinstance(self.min_items, bool) or not isinstance(self.min_items, int) or self.min_items < 0:
            raise ValueError(f"rule {self.name!r}: min_items must be a non-negative integer, got {self.min_items!r}")
        if not isinstance(self.severity, Severity):
            raise ValueError(f"rule {self.name!r}: severity must be a Severity")
        if not isinstance(self.demote, bool):
            raise ValueError(f"rule {self.name!r}: demote must be true or false")
        if self.minutes is not None and (
            isinstance(self.minutes, bool) or not isinstance(self.minutes, int | float) or not 0 < self.minutes < 1e7
        ):
            raise ValueError(f"rule {self.name!r}: minutes must be a positive number, got {self.minutes!r}")
        if (self.false_alarm_per_100k is None) == (self.threshold is None):
            raise ValueError(f"rule {self.name!r}: give exactly one of false_alarm_per_100k and threshold")
        self._check_kind()

    def _check_kind(self) -> None:
        if metric_kind(self.metric) == "concept":
            if self.threshold is None or not math.isfinite(self.threshold):
                raise ValueError(f"rule {self.name!r}: concept metric {self.metric!r} needs a finite threshold")
            return
        fa = self.false_alarm_per_100k
        if fa is None or not math.isfinite(fa) or fa <= 0:
            raise ValueError(f"rule {self.name!r}: {self.metric!r} needs a positive false_alarm_per_100k")
        if self.step > self.window:
            raise ValueError(f"rule {self.name!r}: step {self.step} > window {self.window} leaves items untested")
        if self.min_items > self.window:
            raise ValueError(f"rule {self.name!r}: min_items {self.min_items} > window {self.window}")

    @property
    def is_concept(self) -> bool:
        return metric_kind(self.metric) == "concept"

    @property
    def alpha(self) -> float:
        """Per-look alpha (statistical rules); nan for concept rules."""
        return math.nan if self.false_alarm_per_100k is None else alpha_per_look(self.false_alarm_per_100k, self.step)

    @property
    def needed(self) -> int:
        """Items (or labelled items, for concept rules) a look needs before it is tested."""
        return self.min_items or (1 if self.is_concept else self.window)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["severity"] = self.severity.value
        return {k: v for k, v in out.items() if v is not None}

    @classmethod
    def from_json(cls, data: Any) -> AlarmRule:
        if not isinstance(data, Mapping):
            raise ValueError(f"a rule must be a JSON object, got {type(data).__name__}")
        label = repr(data.get("name", "?"))
        unknown = sorted(set(data) - _RULE_KEYS)
        if unknown:
            raise ValueError(
                f"rule {label}: unknown field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(_RULE_KEYS))}"
            )
        missing = [k for k in _REQUIRED if k not in data]
        if missing:
            raise ValueError(f"rule {label}: missing field(s) {', '.join(missing)}")
        try:
            severity = Severity(data.get("severity", Severity.WARNING.value))
        except ValueError:
            choices = ", ".join(s.value for s in Severity)
            raise ValueError(f"rule {label}: severity must be one of {choices}, got {data.get('severity')!r}") from None
        for key in ("false_alarm_per_100k", "threshold", "minutes"):
            v = data.get(key)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int | float)):
                raise ValueError(f"rule {label}: {key} must be a number, got {v!r}")
        return cls(
            name=data["name"],
            metric=data["metric"],
            window=data["window"],
            step=data["step"],
            false_alarm_per_100k=None
            if data.get("false_alarm_per_100k") is None
            else float(data["false_alarm_per_100k"]),
            threshold=None if data.get("threshold") is None else float(data["threshold"]),
            severity=severity,
            demote=data.get("demote", False),
            min_items=data.get("min_items", 0),
            minutes=None if data.get("minutes") is None else float(data["minutes"]),
        )


@dataclass(frozen=True)
class AlarmRuleSet:
    """A station's rules; interlock None = default (on at `full`, off otherwise)."""

    rules: tuple[AlarmRule, ...]
    interlock: bool | None = None

    def __post_init__(self) -> None:
        names = [r.name for r in self.rules]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"rule names must be unique; repeated: {', '.join(dupes)}")
        if self.interlock is not None and not isinstance(self.interlock, bool):
            raise ValueError("interlock must be true, false or null")

    def interlock_on(self, level: AutomationLevel) -> bool:
        return level is AutomationLevel.FULL if self.interlock is None else self.interlock

    @property
    def false_alarm_per_100k(self) -> float:
        """The set's false-alarm budget: the sum over its statistical rules (union bound)."""
        return sum(r.false_alarm_per_100k or 0.0 for r in self.rules)

    def to_json(self) -> dict[str, Any]:
        return {"rules": [r.to_json() for r in self.rules], "interlock": self.interlock}

    @classmethod
    def from_json(cls, data: Any) -> AlarmRuleSet:
        if not isinstance(data, Mapping):
            raise ValueError(f"a rule set must be a JSON object with 'rules', got {type(data).__name__}")
        unknown = sorted(set(data) - {"rules", "interlock"})
        if unknown:
            raise ValueError(f"rule set: unknown field(s) {', '.join(unknown)}; allowed: interlock, rules")
        rules = data.get("rules")
        if not isinstance(rules, list):
            raise ValueError("rule set: 'rules' must be a list of rules")
        interlock = data.get("interlock")
        if interlock is not None and not isinstance(interlock, bool):
            raise ValueError(f"rule set: interlock must be true, false or null, got {interlock!r}")
        return cls(tuple(AlarmRule.from_json(r) for r in rules), interlock)


@dataclass(frozen=True)
class RuleOutcome:
    rule: AlarmRule
    result: DriftResult
    firing: bool


def _input(
    name: str, metric: str, *, demote: bool = False, severity: Severity = Severity.WARNING, window: int = 200
) -> AlarmRule:
    return AlarmRule(name, metric, window, 50, false_alarm_per_100k=0.05, severity=severity, demote=demote)


# Statistical rules: 11 x 0.05 = 0.55 false alarms per 100,000 items per station at most (union bound).
# Demoting: the input shifts that make scores untrustworthy (exposure, focus, the image as the model sees
# it) and the audited escape bound. Unjudgeable/unreadable items already go to people: no demotion.
DEFAULT_RULES = AlarmRuleSet(
    (
        _input("brightness", "brightness", demote=True),
        _input("contrast", "contrast"),
        _input("sharpness", "sharpness", demote=True),
        _input("colour cast", "colour_cast"),
        _input("image size", "width", severity=Severity.INFO),
        _input("unjudgeable share", "unjudgeable_share"),
        _input("unreadable share", "unreadable_share"),
        _input("feature drift", "features", demote=True, severity=Severity.CRITICAL),
        _input("score distribution", "score", window=300),
        _input("share to people", "to_people_share", window=300),
        _input("scratch share", "scratch_share", window=300),
        AlarmRule("disagreement", "disagreement", 300, 50, threshold=0.10, min_items=100),
        AlarmRule("calibration (ECE)", "ece", 300, 50, threshold=0.10, min_items=100),
        AlarmRule(
            "escape upper bound",
            "escape_upper",
            500,
            50,
            threshold=0.03,
            severity=Severity.CRITICAL,
            demote=True,
            min_items=200,
        ),
        AlarmRule("label-free escape bound", "escape_label_free_upper", 500, 50, threshold=0.03, min_items=200),
    )
)


def _concept_value(metric: str, concept: Concept) -> tuple[float, int] | None:
    """(value compared with the threshold, labelled items behind it); None when unknown."""
    if metric == "ece":
        return None if concept.ece is None or math.isnan(concept.ece) else (concept.ece, concept.ece_n)
    est = {
        "disagreement": concept.disagreement,
        "escape_upper": concept.escape_audited,
        "escape_label_free_upper": concept.escape_label_free,
    }[metric]
    if est is None or math.isnan(est.rate):
        return None
    value = est.rate if metric == "disagreement" else est.upper
    return value, est.n


def concept_check(metric: str, concept: Concept | None, threshold: float, *, min_items: int = 1) -> DriftResult:
    """Compare a concept metric with an absolute threshold: disagreement (rate), ece, escape_upper and
    escape_label_free_upper (one-sided upper bounds). Fewer than `min_items` labelled items: skipped."""
    if metric not in CONCEPT_METRICS:
        raise ValueError(f"{metric!r} is not a concept metric ({', '.join(CONCEPT_METRICS)})")
    got = None if concept is None else _concept_value(metric, concept)
    if got is None:
        return DriftResult(
            metric, "concept", math.nan, math.nan, math.nan, threshold, False, 0, 0, {"skipped": "no data"}
        )
    value, n = got
    if n < min_items:
        why = f"{n} labelled items < {min_items}"
        return DriftResult(metric, "concept", value, math.nan, math.nan, threshold, False, n, 0, {"skipped": why})
    return DriftResult(metric, "concept", value, math.nan, value - threshold, threshold, value > threshold, n, 0, {})


def _rules(rules: AlarmRuleSet | Iterable[AlarmRule]) -> tuple[AlarmRule, ...]:
    return rules.rules if isinstance(rules, AlarmRuleSet) else tuple(rules)


def _look(
    rule: AlarmRule, reference: Reference | None, window: Sequence[MonitorSample], concept: Concept | None
) -> RuleOutcome:
    if rule.is_concept:
        assert rule.threshold is not None  # validated
        result = concept_check(rule.metric, concept, rule.threshold, min_items=rule.needed)
    else:
        ref = reference if reference is not None else Reference({}, {})
        if rule.minutes is not None and window:  # the time-based part of the window
            oldest = window[-1].at - timedelta(minutes=rule.minutes)
            window = [s for s in window if s.at >= oldest]
        result = check_window(rule.metric, ref, window, rule.alpha, min_items=rule.needed)
    return RuleOutcome(rule, result, result.breached)


def evaluate(
    rules: AlarmRuleSet | Iterable[AlarmRule],
    reference: Reference | None,
    samples: Sequence[MonitorSample],
    concept: Concept | None = None,
    *,
    n_seen: int | None = None,
) -> list[RuleOutcome]:
    """The latest look of every rule on the last `window` of `samples` (oldest first).

    `n_seen`: the station's item count so far; when given, only rules due at this count (a multiple
    of their `step`) are evaluated, which keeps the number of looks what the false-alarm arithmetic
    assumes however often the caller asks. Concept rules read `concept` (None: skipped).
    """
    out = []
    for rule in _rules(rules):
        if n_seen is not None and n_seen % rule.step:
            continue
        out.append(_look(rule, reference, samples[-rule.window :], concept))
    return out


def scan(rule: AlarmRule, reference: Reference, samples: Sequence[MonitorSample]) -> list[tuple[int, RuleOutcome]]:
    """Every look of a statistical rule over a stream: (items seen, outcome) at step, 2·step, ..."""
    if rule.is_concept:
        raise ValueError(f"rule {rule.name!r} is a concept rule: scan needs the concept per look")
    return [
        (end, _look(rule, reference, samples[max(0, end - rule.window) : end], None))
        for end in look_ends(len(samples), rule.step)
    ]


def first_alarm(
    rule: AlarmRule, reference: Reference, samples: Sequence[MonitorSample], *, after: int = 0
) -> int | None:
    """Items seen at the first firing look that ends after item `after`; None if it never fires."""
    if rule.is_concept:
        raise ValueError(f"rule {rule.name!r} is a concept rule: first_alarm needs the concept per look")
    for end in look_ends(len(samples), rule.step):
        if end <= after:
            continue
        if _look(rule, reference, samples[max(0, end - rule.window) : end], None).firing:
            return end
    return None


_DOWN = {AutomationLevel.FULL: AutomationLevel.PARTIAL, AutomationLevel.PARTIAL: AutomationLevel.AI_ASSIST}


def demote(level: AutomationLevel) -> AutomationLevel | None:
    """One level down for the interlock: full -> partial -> ai_assist; None below that (nothing to drop)."""
    return _DOWN.get(level)


def _rule_text(rule: AlarmRule) -> str:
    limit = f"threshold {rule.threshold:g}" if rule.threshold is not None else f"{rule.false_alarm_per_100k:g}/100k"
    extra = (", demotes" if rule.demote else "") + (f", min {rule.min_items}" if rule.min_items else "")
    extra += f", within {rule.minutes:g} min" if rule.minutes is not None else ""
    return f"{rule.metric}, window {rule.window} step {rule.step}, {limit}, {rule.severity.value}{extra}"


def _interlock_text(value: bool | None) -> str:
    return {None: "default (on at full only)", True: "on", False: "off"}[value]


_FIELDS = (
    "metric", "window", "step", "false_alarm_per_100k", "threshold", "severity", "demote", "min_items", "minutes"
)  # fmt: skip


def diff_rule_sets(old: AlarmRuleSet | None, new: AlarmRuleSet) -> list[str]:
    """What changes from `old` to `new`, one line per added, removed or changed rule (by name) and
    for the interlock switch; empty when nothing does. `old` None: every rule is added."""
    before = {r.name: r for r in old.rules} if old is not None else {}
    after = {r.name: r for r in new.rules}
    out: list[str] = []
    if old is None or old.interlock != new.interlock:
        was = "" if old is None else f"{_interlock_text(old.interlock)} -> "
        out.append(f"interlock: {was}{_interlock_text(new.interlock)}")
    for name, rule in after.items():
        if name not in before:
            out.append(f"+ {name}: {_rule_text(rule)}")
        elif before[name] != rule:
            fields = [f"{k} {getattr(before[name], k)!s} -> {getattr(rule, k)!s}" for k in _FIELDS
                      if getattr(before[name], k) != getattr(rule, k)]  # fmt: skip
            out.append(f"~ {name}: {'; '.join(fields)}")
    out += [f"- {name}: {_rule_text(rule)}" for name, rule in before.items() if name not in after]
    return out
