"""Benchmark drift detection (core.drift + core.alarms DEFAULT_RULES) on streams of real generated images.

    .venv/bin/python scripts/bench_drift.py [--quick] [--seeds 10] [--pool 400] [--out result.json]

Pools: per condition, `--pool` lab phone photos (half scratched) are rendered by inspection.vision.synth
at 960x540 and scored by the shipped model (models/baseline, ONNX) as a 1920x1080 camera decoded at 1/2
(`prepare_image(scale=2)`: the ingest path's DCT-reduced decode), with frame metrics from
vision.images.image_metrics and the model's f0..f7 features when the artifact has them. Conditions:
exposure -25 %, defocus (Gaussian sigma 2 px at 1080p), a new phone model (white body and bezel), a new
table colour (a blue mat), a doubled scratch rate (10 % -> 20 %, output drift) and a model whose scores
are shifted (logit - 4: concept/calibration drift, seen through audits labelled with the generator's truth).

Streams: per seed, items are drawn with replacement from the pools (labels at the scratch rate first):
500 unshifted items, then the shifted condition. Routing is simulated as `partial`: auto-pass below 0.1,
auto-reject from 0.9, else to a person (who labels it); unjudgeable items (domain gate) go to people;
10 % of automatic decisions are blind-audited.

Reference (--reference): by default 500 items drawn from the same unshifted pool as the streams, as a
station's reference window ("the first N items") would be: the simulated line IS that pool's empirical
distribution, so the null hypothesis holds exactly. `separate` draws them from another pool: the two
pools then differ by their own sampling error (~1/sqrt(pool)), which the tests rightly call drift once
thousands of items are drawn from ~400 images; `artifact` uses model.json's monitor.reference (measured
on 1920x1080 frames, so sharpness differs from these 960x540 frames).

Output: a table and one JSON line with, per condition, items from the change to the first alarm
(median and IQR over seeds; misses counted), the rule that fired first; false alarms on unshifted items;
and the label-free escape estimate against the audited 95 % interval.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from inspection.core.alarms import DEFAULT_RULES, AlarmRule, concept_check, first_alarm, scan
from inspection.core.calibration import IsotonicMap, fit_isotonic
from inspection.core.concept import Concept, audited_escape, calibration_error, cbpe_escape, disagreement_rate
from inspection.core.drift import MonitorSample, Reference
from inspection.vision.images import image_metrics
from inspection.vision.predictor import Predictor, load_predictor
from inspection.vision.synth import render

SIZE = (960, 540)
CAMERA_SCALE = 2.0  # frames stand for a 1920x1080 camera decoded at 1/2
PASS_BELOW, REJECT_FROM = 0.1, 0.9
AUDIT_RATE = 0.10
SCRATCH_RATE = 0.10
REFERENCE_ITEMS = 2000  # the labelled reference period (its metric samples are capped at 500 each)
CHANGE_AT = 500
SCORE_SHIFT = -4.0  # logits
T0 = datetime(2025, 1, 1, tzinfo=UTC)
Image = np.ndarray


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# conditions: pixel transforms of a rendered lab photo (the masks come from the renderer)
# ---------------------------------------------------------------------------------------------


def _exposure(img: Image, phone: Image, glass: Image) -> Image:
    return np.clip(img.astype(np.float32) * 0.75 + 0.5, 0, 255).astype(np.uint8)


def _defocus(img: Image, phone: Image, glass: Image) -> Image:
    return cv2.GaussianBlur(img, (0, 0), 1.0)  # 2 px at 1080p: below degrade's mildest (3 px)


def _white_phone(img: Image, phone: Image, glass: Image) -> Image:
    """Body and bezel white: the phone outside its display (the glass shrunk by the bezel width)."""
    display = cv2.erode(glass, np.ones((9, 9), np.uint8))
    mask = (phone > 0) & (display == 0)
    out = img.astype(np.float32)
    grey = out[mask].mean(axis=1, keepdims=True)
    out[mask] = np.clip(228.0 + (grey - grey.mean()) * 0.5, 0, 255)  # keep the shading, lift to white
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def _blue_table(img: Image, phone: Image, glass: Image) -> Image:
    out = img.astype(np.float32)
    table = phone == 0
    out[table] *= np.array([1.25, 1.0, 0.7], np.float32)  # BGR: a blue mat
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


Transform = Callable[[Image, Image, Image], Image]
PIXEL_SHIFTS: dict[str, Transform] = {
    "exposure_-25%": _exposure,
    "defocus_blur": _defocus,
    "white_phone_body": _white_phone,
    "table_colour": _blue_table,
}


# ---------------------------------------------------------------------------------------------
# pools: rendered, scored and measured once
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pool:
    values: list[dict[str, float]]  # per item: frame metrics, score, n_regions, f0..f7
    unjudgeable: np.ndarray  # bool
    truth: np.ndarray  # bool: the generator drew a scratch

    def with_scores(self, scores: np.ndarray) -> Pool:
        values = [{**v, "score": float(s)} for v, s in zip(self.values, scores, strict=True)]
        return replace(self, values=values)


def _measure(predictor: Predictor, images: Sequence[Image]) -> tuple[list[dict[str, float]], list[bool]]:
    scored = predictor.score_prepared([predictor.prepare_image(im, scale=CAMERA_SCALE) for im in images])
    rows, bad = [], []
    for im, s in zip(images, scored, strict=True):
        m = image_metrics(im)
        row = {k: float(getattr(m, k)) for k in ("brightness", "contrast", "sharpness", "colour_cast")}
        row.update(width=SIZE[0] * CAMERA_SCALE, height=SIZE[1] * CAMERA_SCALE)
        row["n_regions"] = float(len(s.prediction.regions))
        row.update({f"f{i}": float(v) for i, v in enumerate(getattr(s, "features", ()) or ())})
        score = s.prediction.score
        row["score"] = float(score) if score is not None else float("nan")
        rows.append(row)
        bad.append(score is None or bool(s.gate))
    return rows, bad


def make_pool(predictor: Predictor, n: int, seed: int, transform: Transform | None, name: str) -> Pool:
    values: list[dict[str, float]] = []
    unjudgeable: list[bool] = []
    truth = np.arange(n) % 2 == 0
    t0 = time.perf_counter()
    for start in range(0, n, 16):
        batch = []
        for i in range(start, min(n, start + 16)):
            s = render(seed, i, scratch=bool(truth[i]), size=SIZE)
            batch.append(s.image if transform is None else transform(s.image, s.phone, s.glass))
        rows, bad = _measure(predictor, batch)
        values += rows
        unjudgeable += bad
    log(f"  pool {name}: {n} images in {time.perf_counter() - t0:.0f} s, unjudgeable {np.mean(unjudgeable):.1%}")
    return Pool(values, np.asarray(unjudgeable), truth)


def shifted_scores(pool: Pool) -> Pool:
    s = np.clip(np.asarray([v["score"] for v in pool.values]), 1e-6, 1 - 1e-6)
    logit = np.log(s / (1 - s)) + SCORE_SHIFT
    return pool.with_scores(1.0 / (1.0 + np.exp(-logit)))


# ---------------------------------------------------------------------------------------------
# streams
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stream:
    samples: list[MonitorSample]
    score: np.ndarray
    truth: np.ndarray
    auto_pass: np.ndarray
    labelled: np.ndarray  # reviewed by a person or audited
    audited: np.ndarray  # blind audit of an automatic decision
    calibration: IsotonicMap | None = None  # the reference's P(scratch | score), for the label-free estimate


def _route(score: float, unjudgeable: bool) -> dict[str, bool]:
    judge = not unjudgeable and np.isfinite(score)
    flags = {"unjudgeable": unjudgeable, "unreadable": False}
    flags["auto_pass"] = bool(judge and score < PASS_BELOW)
    flags["auto_reject"] = bool(judge and score >= REJECT_FROM)
    flags["to_people"] = not (flags["auto_pass"] or flags["auto_reject"])
    return flags


def draw(rng: np.random.Generator, pool: Pool, n: int, scratch_rate: float) -> np.ndarray:
    """Pool indices of n items: a scratch with probability scratch_rate, then uniform in its half."""
    scratched = rng.random(n) < scratch_rate
    pos, neg = np.flatnonzero(pool.truth), np.flatnonzero(~pool.truth)
    return np.where(scratched, rng.choice(pos, n), rng.choice(neg, n))


def build_stream(rng: np.random.Generator, parts: Sequence[tuple[Pool, np.ndarray]]) -> Stream:
    rows = [(pool.values[i], bool(pool.unjudgeable[i]), bool(pool.truth[i])) for pool, idx in parts for i in idx]
    flags = [_route(v["score"], bad) for v, bad, _ in rows]
    auto_pass = np.asarray([f["auto_pass"] for f in flags], dtype=bool)
    auto = auto_pass | np.asarray([f["auto_reject"] for f in flags], dtype=bool)
    audited = auto & (rng.random(len(rows)) < AUDIT_RATE)
    samples = [
        MonitorSample(T0, v, {**f, "audit": bool(a)}) for (v, _, _), f, a in zip(rows, flags, audited, strict=True)
    ]
    score = np.asarray([v["score"] for v, _, _ in rows])
    truth = np.asarray([t for _, _, t in rows], dtype=bool)
    return Stream(samples, score, truth, auto_pass, audited | ~auto, audited)


def concept_at(st: Stream, end: int, window: int) -> Concept:
    """What the labels up to item `end` say, over the last `window` labelled (or auto-passed) items."""
    lab = np.flatnonzero(st.labelled[:end])[-window:]
    aud = np.flatnonzero(st.audited[:end])[-window:]
    aud_pass = np.flatnonzero((st.audited & st.auto_pass)[:end])[-window:]
    passed = np.flatnonzero(st.auto_pass[:end])[-window:]
    calls = st.score[lab] >= 0.5
    return Concept(
        disagreement=disagreement_rate(calls, st.truth[lab]) if lab.size else None,
        ece=calibration_error(st.score[aud], st.truth[aud]) if aud.size else None,
        ece_n=int(aud.size),
        escape_audited=audited_escape(st.truth[aud_pass]) if aud_pass.size else None,
        escape_label_free=cbpe_escape(st.score[passed], calibration=st.calibration) if passed.size else None,
    )


def first_concept_alarm(rule: AlarmRule, st: Stream, *, after: int) -> int | None:
    assert rule.threshold is not None
    for end in range(after + rule.step, len(st.samples) + 1, rule.step):
        if concept_check(rule.metric, concept_at(st, end, rule.window), rule.threshold, min_items=rule.needed).breached:
            return end
    return None


# ---------------------------------------------------------------------------------------------
# measurements
# ---------------------------------------------------------------------------------------------


STAT_RULES = [r for r in DEFAULT_RULES.rules if not r.is_concept]
CONCEPT_RULES = [r for r in DEFAULT_RULES.rules if r.is_concept]
STAT_NAMES = {r.name for r in STAT_RULES}


def detection(st: Stream, reference: Reference) -> tuple[int | None, str, int]:
    """(items from the change to the first alarm, the rule, false alarms before the change)."""
    best: tuple[int, str] | None = None
    false = 0
    for rule in STAT_RULES:
        false += sum(o.firing for end, o in scan(rule, reference, st.samples[:CHANGE_AT]))
        at = first_alarm(rule, reference, st.samples, after=CHANGE_AT)
        if at is not None and (best is None or at < best[0]):
            best = (at, rule.name)
    for rule in CONCEPT_RULES:
        at = first_concept_alarm(rule, st, after=CHANGE_AT)
        if at is not None and (best is None or at < best[0]):
            best = (at, rule.name)
    return (None, "-", false) if best is None else (best[0] - CHANGE_AT, best[1], false)


def false_alarms(st: Stream, reference: Reference) -> dict[str, int]:
    """Alarm episodes (a rule going from quiet to firing) per rule over the whole unshifted stream."""
    out = {}
    for rule in STAT_RULES:
        fired = [o.firing for _, o in scan(rule, reference, st.samples)]
        out[rule.name] = sum(1 for i, f in enumerate(fired) if f and (i == 0 or not fired[i - 1]))
    for rule in CONCEPT_RULES:
        assert rule.threshold is not None
        fired = [
            concept_check(rule.metric, concept_at(st, end, rule.window), rule.threshold, min_items=rule.needed).breached
            for end in range(rule.step, len(st.samples) + 1, rule.step)
        ]
        out[rule.name] = sum(1 for i, f in enumerate(fired) if f and (i == 0 or not fired[i - 1]))
    return out


def escape_check(st: Stream, part: slice) -> dict[str, Any]:
    """Label-free (CBPE, scores mapped through the reference's isotonic calibration) vs audited escape among
    auto-passed items of a part of the stream, and the truth; the estimate from the raw scores beside it."""
    passed = np.flatnonzero(st.auto_pass[part]) + (part.start or 0)
    audited = passed[st.audited[passed]]
    raw = cbpe_escape(st.score[passed])
    free = cbpe_escape(st.score[passed], calibration=st.calibration)
    aud = audited_escape(st.truth[audited])
    truth = float(st.truth[passed].mean()) if passed.size else float("nan")
    return {
        "n_auto_passed": int(passed.size),
        "n_audited": int(audited.size),
        "label_free": [round(free.rate, 5), round(free.low, 5), round(free.high, 5)],
        "label_free_method": free.method,
        "label_free_raw_scores": [round(raw.rate, 5), round(raw.low, 5), round(raw.high, 5)],
        "audited_95": [round(aud.rate, 5), round(aud.low, 5), round(aud.high, 5)],
        "true_rate": round(truth, 5),
        "label_free_within_audited": bool(aud.low <= free.rate <= aud.high),
        "label_free_error": round(free.rate - truth, 5),
    }


def summarise(delays: list[int | None]) -> dict[str, Any]:
    got = np.asarray([d for d in delays if d is not None], dtype=np.float64)
    if got.size == 0:
        return {"median": None, "iqr": None, "misses": len(delays)}
    q1, med, q3 = np.percentile(got, [25, 50, 75])
    return {"median": float(med), "iqr": [float(q1), float(q3)], "misses": len(delays) - int(got.size)}


# ---------------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------------


def _reference(args: argparse.Namespace, predictor: Predictor, pools: dict[str, Pool]) -> tuple[Reference, str]:
    """The reference the streams are compared with (see --reference)."""
    if args.reference == "artifact":
        block = getattr(predictor.meta, "monitor", {}).get("reference")
        if not block:
            raise SystemExit("the artifact has no monitor.reference; use --reference pool")
        return Reference.from_json(block), "artifact monitor.reference"
    pool = pools["normal"] if args.reference == "pool" else pools["reference"]
    rng = np.random.default_rng(12345)
    idx = draw(rng, pool, REFERENCE_ITEMS, SCRATCH_RATE)  # the line's scratch mix, not the pool's 50 %
    st = build_stream(rng, [(pool, idx)])
    where = "drawn from the unshifted pool" if args.reference == "pool" else "drawn from a separate unshifted pool"
    # NannyML's CBPE assumption: the reference period is labelled (here by the generator's truth)
    ref = replace(Reference.from_samples(st.samples, source="bench"), calibration=fit_isotonic(st.score, st.truth))
    return ref, f"{REFERENCE_ITEMS} labelled items {where}"


def run_condition(name: str, pools: dict[str, Pool], ref: Reference, args: argparse.Namespace) -> dict[str, Any]:
    normal = pools["normal"]
    shifted, rate = pools.get(name, normal), SCRATCH_RATE * (2 if name == "scratch_rate_x2" else 1)
    horizon = args.horizon_concept if name == "score_shift" else args.horizon
    delays, firsts, false, errors = [], [], 0, []
    for seed in range(args.seeds):
        rng = np.random.default_rng([seed, len(name)])
        parts = [(normal, draw(rng, normal, CHANGE_AT, SCRATCH_RATE)), (shifted, draw(rng, shifted, horizon, rate))]
        st = replace(build_stream(rng, parts), calibration=ref.calibration)
        delay, rule, fa = detection(st, ref)
        delays.append(delay)
        firsts.append(rule)
        false += fa
        errors.append(escape_check(st, slice(CHANGE_AT, None))["label_free_error"])
    out = summarise(delays)
    out.update(first_rule=max(set(firsts), key=firsts.count), horizon=horizon, false_alarms_before_change=false)
    finite = [e for e in errors if np.isfinite(e)]  # nan: nothing auto-passed (e.g. all stopped by the gate)
    out["label_free_escape_error_median"] = float(np.median(finite)) if finite else None
    log(f"  {name}: delay {out['median']} (IQR {out['iqr']}, misses {out['misses']}), first rule {out['first_rule']}")
    return out


def parse() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke run: small pools, 3 seeds, short streams")
    ap.add_argument("--model", type=Path, default=Path("models/baseline"))
    ap.add_argument("--seeds", type=int, default=None, help="streams per condition (default 10; quick 3)")
    ap.add_argument("--pool", type=int, default=None, help="images per condition pool (default 400; quick 32)")
    ap.add_argument("--fa-items", type=int, default=None, help="unshifted items for false alarms (20,000; quick 3,000)")
    ap.add_argument(
        "--reference",
        choices=("pool", "separate", "artifact"),
        default="pool",
        help="pool: 500 items drawn from the unshifted pool the streams are drawn from (default); separate: from "
        "another pool (the pools' own sampling difference then counts as drift); artifact: model.json's",
    )
    ap.add_argument("--out", type=Path, default=None, help="also write the JSON result here")
    args = ap.parse_args()
    quick = args.quick
    args.seeds = args.seeds or (3 if quick else 10)
    args.pool = args.pool or (32 if quick else 400)
    args.fa_items = args.fa_items or (3000 if quick else 20000)
    args.horizon = 600 if quick else 1500
    args.horizon_concept = 2000 if quick else 6000
    return args


def main() -> None:
    args = parse()
    t0 = time.perf_counter()
    predictor = load_predictor(args.model, threads=2)
    log(f"pools of {args.pool} images at {SIZE[0]}x{SIZE[1]} (scored as 1920x1080 / 2):")
    pools = {"normal": make_pool(predictor, args.pool, 9002, None, "normal")}
    if args.reference == "separate":
        pools["reference"] = make_pool(predictor, args.pool, 9001, None, "reference")
    for k, (name, fn) in enumerate(PIXEL_SHIFTS.items()):
        pools[name] = make_pool(predictor, args.pool, 9100 + k, fn, name)
    pools["score_shift"] = shifted_scores(pools["normal"])
    ref, ref_source = _reference(args, predictor, pools)
    log(f"detection over {args.seeds} seeds (streams resampled from the pools):")
    conditions = [*PIXEL_SHIFTS, "scratch_rate_x2", "score_shift"]
    results = {name: run_condition(name, pools, ref, args) for name in conditions}
    log(f"false alarms on {args.fa_items} unshifted items:")
    rng = np.random.default_rng(777)
    normal = pools["normal"]
    st = build_stream(rng, [(normal, draw(rng, normal, args.fa_items, SCRATCH_RATE))])
    st = replace(st, calibration=ref.calibration)
    fa = false_alarms(st, ref)
    budget = sum(r.false_alarm_per_100k or 0.0 for r in STAT_RULES)
    report = {
        "bench": "drift",
        "quick": args.quick,
        "frames": f"{SIZE[0]}x{SIZE[1]} rendered, scored as a 1920x1080 camera decoded at 1/2",
        "streams": "items resampled with replacement from per-condition pools of rendered, scored images",
        "pool_images": args.pool,
        "seeds": args.seeds,
        "reference": ref_source,
        "features": "f0" in ref.values,
        "routing": {"auto_pass_below": PASS_BELOW, "auto_reject_from": REJECT_FROM, "audit_rate": AUDIT_RATE},
        "change_at": CHANGE_AT,
        "detection_delay_items": results,
        "false_alarms": {
            "items": args.fa_items,
            "alarms": sum(v for k, v in fa.items() if k in STAT_NAMES),
            "per_rule": {k: v for k, v in fa.items() if v and k in STAT_NAMES},
            # absolute thresholds on label estimates: they fire when the line's real escape/disagreement
            # is near the threshold, not by a false-alarm budget
            "concept_alarms": {k: v for k, v in fa.items() if v and k not in STAT_NAMES},
            "budget_per_100k_statistical_rules": round(budget, 4),
            "budget_implies_at_most_on_these_items": round(budget * args.fa_items / 100_000, 3),
        },
        "escape_stationary": escape_check(st, slice(0, None)),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    print_table(report)
    line = json.dumps(report)
    print(line)
    if args.out:
        args.out.write_text(line + "\n")


def print_table(report: dict[str, Any]) -> None:
    print(f"{'condition':<20} {'median':>7} {'IQR':>13} {'misses':>6}  first rule")
    for name, r in report["detection_delay_items"].items():
        iqr = "-" if r["iqr"] is None else f"{r['iqr'][0]:.0f}-{r['iqr'][1]:.0f}"
        med = "-" if r["median"] is None else f"{r['median']:.0f}"
        print(f"{name:<20} {med:>7} {iqr:>13} {r['misses']:>6}  {r['first_rule']}")
    fa = report["false_alarms"]
    print(
        f"false alarms on {fa['items']} unshifted items: {fa['alarms']} "
        f"(budget {fa['budget_per_100k_statistical_rules']} per 100,000 items: "
        f"at most {fa['budget_implies_at_most_on_these_items']} expected here); concept alarms {fa['concept_alarms']}"
    )
    e = report["escape_stationary"]
    print(
        f"escape among auto-passed, stationary: label-free {e['label_free']} vs audited 95 % {e['audited_95']}"
        f" (truth {e['true_rate']}; within: {e['label_free_within_audited']})"
    )


if __name__ == "__main__":
    main()
