"""A model artifact is a directory: `weights.safetensors` (tensors only: loading never unpickles) and
`model.json` (version, architecture, preprocessing, calibration, classes, data hash, metrics)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from inspection.vision.artifact_meta import (
    META,
    ArtifactError,
    is_artifact,
    read_meta_json,
    update_metrics,
    write_meta_json,
)
from inspection.vision.model import NetConfig, ScoringNet, ScratchNet
from inspection.vision.preprocess import PreprocessSpec

__all__ = [
    "META",
    "ONNX",
    "WEIGHTS",
    "ArtifactError",
    "ModelMeta",
    "export_onnx",
    "load_artifact",
    "read_meta",
    "save_artifact",
    "torch_threads",
    "update_metrics",
]

WEIGHTS = "weights.safetensors"
ONNX = "model.onnx"  # the same network for ONNX Runtime: ~1.5-5x faster than eager torch on 2 CPU cores


@dataclass(frozen=True)
class ModelMeta:
    version: str
    net: NetConfig
    preprocess: PreprocessSpec
    temperature: float = 1.0  # calibrated probability = sigmoid(logit / temperature)
    classes: tuple[str, ...] = ("ok", "scratch")
    positive: str = "scratch"
    data_hash: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    domain: dict[str, Any] = field(default_factory=dict)  # the domain gate's accepted ranges (core.gate)
    # reference distributions for monitoring: features PCA (vision.features) + core.drift Reference JSON
    monitor: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "architecture": {"name": "efficientnet_lite0_fcn", **vars(self.net)},
            "preprocess": self.preprocess.to_json(),
            "calibration": {"method": "temperature", "temperature": self.temperature},
            "classes": list(self.classes),
            "positive": self.positive,
            "data_hash": self.data_hash,
            "metrics": self.metrics,
            "training": self.training,
            **({"domain": self.domain} if self.domain else {}),
            **({"monitor": self.monitor} if self.monitor else {}),
        }

    @staticmethod
    def from_json(data: dict[str, Any]) -> ModelMeta:
        arch = dict(data["architecture"])
        arch.pop("name", None)
        return ModelMeta(
            version=str(data["version"]),
            net=NetConfig(**arch),
            preprocess=PreprocessSpec.from_json(data["preprocess"]),
            temperature=float(data["calibration"]["temperature"]),
            classes=tuple(data["classes"]),
            positive=str(data["positive"]),
            data_hash=str(data.get("data_hash", "")),
            metrics=dict(data.get("metrics", {})),
            training=dict(data.get("training", {})),
            domain=dict(data.get("domain") or {}),
            monitor=dict(data.get("monitor") or {}),
        )


def save_artifact(directory: Path, net: ScratchNet, meta: ModelMeta) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in net.state_dict().items()}
    save_file(state, str(directory / WEIGHTS))
    export_onnx(net, meta, directory / ONNX)
    write_meta_json(directory, meta.to_json())


def export_onnx(net: ScratchNet, meta: ModelMeta, path: Path) -> None:
    """Fixed canvas size, dynamic batch. Outputs: image logit (N), cell logits (N x h x w), pooled
    backbone features (N x D) — model.ScoringNet, the same computation as the torch path."""
    spec = meta.preprocess
    example = torch.zeros(1, 3, spec.canvas_h, spec.canvas_w)
    was_training = net.training
    net.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            ScoringNet(net), (example,), str(path), input_names=["x"], output_names=["logit", "cells", "features"],
            dynamic_axes={"x": {0: "n"}, "logit": {0: "n"}, "cells": {0: "n"}, "features": {0: "n"}},
            opset_version=17, dynamo=False,
        )
    net.train(was_training)


def read_meta(directory: Path) -> ModelMeta:
    """The full metadata a Predictor needs; ArtifactError when any of it is missing or malformed."""
    if not is_artifact(directory):
        raise ArtifactError(f"{directory} is not a model artifact (no {META})")
    try:
        return ModelMeta.from_json(read_meta_json(directory))
    except (OSError, KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(f"{directory / META}: unreadable model metadata ({exc})") from exc


def load_artifact(directory: Path) -> tuple[ScratchNet, ModelMeta]:
    meta = read_meta(directory)
    weights = directory / WEIGHTS
    if not weights.is_file():
        raise ArtifactError(f"{directory}: missing {WEIGHTS}")
    net = ScratchNet(meta.net)
    net.load_state_dict(load_file(str(weights)), strict=True)
    net.eval()
    return net, meta


def torch_threads(threads: int) -> None:
    torch.set_num_threads(max(1, threads))
