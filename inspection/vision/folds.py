"""Cross-validation folds shared by `scripts/anchor_linear_probe.py` and `scripts/kfold_train.py`, so the
anchor and our training are compared on exactly the same test images.

Stratified 5-fold with `random_state=0` (scikit-learn); with a group pattern (a regex whose first group, or
whole match, names the group in the file name, e.g. a lens id) the folds never split a group, because views
of one object are near-duplicates and would leak from train into test.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

from inspection.vision.dataset import DatasetError, Example, stratified_split


def group_of(name: str, pattern: re.Pattern[str]) -> str:
    match = pattern.search(name)
    if match is None:
        raise DatasetError(f"--groups {pattern.pattern!r} does not match the file name {name!r}")
    return match.group(1) if match.groups() else match.group(0)


def group_names(examples: Sequence[Example], groups: str) -> list[str]:
    pattern = re.compile(groups)
    return [group_of(e.path.name, pattern) for e in examples]


def kfold_splits(
    examples: Sequence[Example], *, k: int = 5, seed: int = 0, groups: str | None = None
) -> list[tuple[list[int], list[int]]]:
    """(train indices, test indices) per fold, deterministic for the same examples and arguments."""
    labels = np.array([e.label for e in examples])
    index = np.zeros(len(examples))
    if groups is None:
        splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
        folds = splitter.split(index, labels)
    else:
        names = group_names(examples, groups)
        if len(set(names)) < k:
            raise DatasetError(f"only {len(set(names))} groups: too few for {k} grouped folds")
        grouped = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
        folds = grouped.split(index, labels, groups=names)
    return [(sorted(map(int, tr)), sorted(map(int, te))) for tr, te in folds]


def holdout_split(
    examples: Sequence[Example], *, fraction: float, seed: int, groups: str | None = None
) -> tuple[list[int], list[int]]:
    """(rest, held-out) indices for training's validation split: `fraction` of each class, and with a group
    pattern whole groups only, so that early stopping and the temperature are judged on objects the fit
    never saw (near-duplicate views of one lens in both halves made goggles' validation look better than
    its test folds)."""
    labels = [e.label for e in examples]
    if groups is None:
        return stratified_split(labels, fraction=fraction, seed=seed)
    names = group_names(examples, groups)
    n_splits = max(2, min(round(1 / fraction), len(set(names))))
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    rest, held = next(splitter.split(np.zeros(len(examples)), labels, groups=names))
    return sorted(map(int, rest)), sorted(map(int, held))
