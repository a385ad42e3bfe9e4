"""Simulate the gradual ramp (inspection.core.ramp) on generated streams; prints JSON.

A stream of items: production and the candidate each auto-pass a share of the items; a pass is an
escape with the model's escape rate; the candidate's passes are blind-audited at the ramp's audit
rate (weight 1 / rate), items routed to people are labelled (weight 1). The ramp is evaluated every
`--check-every` items of the stream, as the monitoring loop would. Reported: whether a truly better
candidate completes shadow -> 100 %, and after how many candidate-decided items a candidate with a
doubled escape rate is rolled back (median and range over the seeds).
"""

from __future__ import annotations

import argparse
import json
import statistics
from dataclasses import dataclass, field

import numpy as np

from inspection.core.ramp import (
    Advance,
    LabelledItem,
    RampPlan,
    RampState,
    RampStep,
    Rollback,
    decide,
    evidence_from_items,
)

PASS_SHARE = 0.85  # share of items a model passes automatically
REVIEW_SHARE = 0.10  # share of items routed to a person (uncertain)
REVIEW_ERROR = 0.15  # the candidate's wrong calls on the uncertain items people review


def sim_plan(limit: float, audit_rate: float) -> RampPlan:
    steps = (
        RampStep(0.0, min_items=200, max_disagreement=0.30, max_escape_upper=limit),
        RampStep(0.05, min_items=200, max_disagreement=0.30, max_escape_upper=limit),
        RampStep(0.25, min_items=400, max_disagreement=0.30, max_escape_upper=limit),
        RampStep(0.50, min_items=800, max_disagreement=0.30, max_escape_upper=limit),
        RampStep(1.0, min_items=0),
    )
    return RampPlan(steps, audit_rate=audit_rate).validate()


@dataclass
class Run:
    outcome: str = "running"
    decided: int = 0  # items the candidate decided (canary steps)
    stream: int = 0  # items of the whole stream
    steps: list[int] = field(default_factory=list)  # stream item at each advance


def _item(rng: np.random.Generator, escape: float, audit_rate: float, decided: bool) -> LabelledItem | None:
    """One candidate-scored item; None when it gets no label."""
    u = rng.random()
    if u < PASS_SHARE:
        if not decided or rng.random() >= audit_rate:
            return None  # an unaudited pass (or, in shadow, a production decision nobody labels)
        label = "scratch" if rng.random() < escape else "ok"
        return LabelledItem(candidate_scratch=False, passed=True, label=label, weight=1.0 / audit_rate)
    if u < PASS_SHARE + REVIEW_SHARE:
        truth = rng.random() < 0.5
        call = truth if rng.random() >= REVIEW_ERROR else not truth
        return LabelledItem(candidate_scratch=call, passed=False, label="scratch" if truth else "ok")
    return None  # automatic rejects: not audited for escapes


def simulate(seed: int, *, escape: float, plan: RampPlan, check_every: int, max_stream: int) -> Run:
    rng = np.random.default_rng(seed)
    run, state = Run(), RampState(0)
    labelled: list[LabelledItem] = []  # since the ramp started (canary items: decided ones only)
    step_items = 0
    while run.stream < max_stream:
        run.stream += 1
        frac = plan.steps[state.step].fraction
        decided = frac > 0 and rng.random() < frac
        if frac > 0 and not decided:
            continue  # production decided this item: no evidence about the candidate
        step_items += 1
        run.decided += int(decided)
        item = _item(rng, escape, plan.audit_rate, decided)
        if item is not None:
            labelled.append(item)
        if run.stream % check_every:
            continue
        d = decide(plan, state, evidence_from_items(step_items, labelled, confidence=plan.confidence))
        if isinstance(d, Rollback):
            run.outcome = "rolled_back"
            return run
        if isinstance(d, Advance):
            run.steps.append(run.stream)
            state, step_items = RampState(d.to_step), 0
            if d.to_step == len(plan.steps) - 1:
                run.outcome = "completed"
                return run
    run.outcome = "undecided"
    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seeds", type=int, default=12)
    ap.add_argument("--production-escape", type=float, default=0.02)
    ap.add_argument("--audit-rate", type=float, default=0.5)
    ap.add_argument("--check-every", type=int, default=50)
    ap.add_argument("--max-stream", type=int, default=400_000)
    a = ap.parse_args()
    p0 = a.production_escape
    plan = sim_plan(1.5 * p0, a.audit_rate)  # the engineer's limit: 1.5 × production's escape rate
    out: dict[str, object] = {"production_escape": p0, "limit": 1.5 * p0, "audit_rate": a.audit_rate,
                              "seeds": a.seeds, "plan": plan.to_json()}  # fmt: skip
    for name, esc in (("better", p0 / 2), ("doubled", 2 * p0)):
        runs = [simulate(s, escape=esc, plan=plan, check_every=a.check_every, max_stream=a.max_stream)
                for s in range(a.seeds)]  # fmt: skip
        decided = [r.decided for r in runs]
        out[name] = {
            "escape": esc,
            "outcomes": {k: sum(r.outcome == k for r in runs) for k in ("completed", "rolled_back", "undecided")},
            "median_decided_items": statistics.median(decided),
            "decided_items_range": [min(decided), max(decided)],
            "median_stream_items": statistics.median(r.stream for r in runs),
        }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
