"""How many epochs a training run gets when nobody says. Pure: stdlib only.

One rule for `inspection train` and for retraining from stored labels (services.retrain):

- a fine-tune of production runs about FINE_TUNE_STEPS optimiser steps, in whole epochs. Production already
  ranks a station's new labels (held-out AUROC 0.995 in scripts/bench_retrain.py): one epoch over 1,600
  labels (43 steps) reached validation AUROC 1.0 and held-out 0.9987, about what 9 epochs had reached
  (0.99995), and the whole retrain took 165 s instead of 592 s; a drifted station's 320 labels get 5 epochs;
- from ImageNet, a small set (under SMALL_SET images) gets SMALL_SET_EPOCHS: on goggles and aluminum the best
  validation epoch of a 12-epoch one-cycle schedule came at 2-4, before the learning rate had annealed,
  and 6 epochs anneal where the best weights are (kfold_train, same folds: goggles 0.8053 against 0.7937,
  aluminum 0.9917 against 0.9918);
- a larger set gets FROM_IMAGENET_EPOCHS, with the early stop.
"""

from __future__ import annotations

import math

FINE_TUNE_STEPS = 40
SMALL_SET = 1000  # images
SMALL_SET_EPOCHS = 6
FROM_IMAGENET_EPOCHS = 12


def default_epochs(n_images: int, *, fine_tune: bool = False, batch_size: int = 32) -> int:
    """Epochs for a run over `n_images` labelled images (its validation part included)."""
    if fine_tune:
        return min(FROM_IMAGENET_EPOCHS, max(1, math.ceil(FINE_TUNE_STEPS * batch_size / max(n_images, 1))))
    return SMALL_SET_EPOCHS if n_images < SMALL_SET else FROM_IMAGENET_EPOCHS
