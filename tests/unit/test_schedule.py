"""How long training runs when nobody says (core.schedule), and which epoch it keeps (vision.train.better)."""

from __future__ import annotations

import pytest

from inspection.core.schedule import FROM_IMAGENET_EPOCHS, SMALL_SET_EPOCHS, default_epochs
from inspection.vision.train import better


@pytest.mark.parametrize(
    ("n_images", "fine_tune", "epochs"),
    [
        (1600, True, 1),  # bench_retrain: 2,000 labels less the held-out fifth
        (1280, True, 1),  # exactly 40 steps of 32
        (1281, True, 1),
        (1279, True, 2),
        (256, True, 5),  # a drifted station's 320 labels
        (10, True, FROM_IMAGENET_EPOCHS),  # never longer than a run from ImageNet
        (0, True, FROM_IMAGENET_EPOCHS),
        (660, False, SMALL_SET_EPOCHS),  # goggles
        (400, False, SMALL_SET_EPOCHS),  # aluminum
        (999, False, SMALL_SET_EPOCHS),
        (1000, False, FROM_IMAGENET_EPOCHS),
        (1800, False, FROM_IMAGENET_EPOCHS),  # NEU-DET
    ],
)
def test_the_default_epochs_follow_the_set_size_and_the_start(n_images: int, fine_tune: bool, epochs: int) -> None:
    assert default_epochs(n_images, fine_tune=fine_tune) == epochs


@pytest.mark.parametrize(
    ("auroc", "loss", "best", "select", "kept"),
    [
        (0.5, 9.0, None, "auroc", True),  # the first epoch is always kept
        (0.9, 0.6, (0.8, 0.3), "auroc", True),  # a better ranking wins though its loss is higher
        (0.8, 0.2, (0.9, 0.3), "auroc", False),  # a worse ranking loses though its loss is lower
        (1.0, 0.05, (1.0, 0.4), "auroc", True),  # saturated: the tie falls to the lower loss
        (1.0, 0.5, (1.0, 0.4), "auroc", False),
        (1.0, 0.4, (1.0, 0.4), "auroc", False),  # nothing better at all
        (0.99995, 0.1, (1.0, 0.4), "auroc", True),  # within 1e-4 counts as equal
        (0.5, 0.2, (0.9, 0.3), "loss", True),  # by loss, the ranking does not matter
        (0.99, 0.35, (0.9, 0.3), "loss", False),
    ],
)
def test_an_epoch_is_kept_only_when_it_beats_the_kept_one(
    auroc: float, loss: float, best: tuple[float, float] | None, select: str, kept: bool
) -> None:
    assert better(auroc, loss, best, select=select) is kept
