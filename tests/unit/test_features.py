"""Pooled backbone features: the ScoringNet wrapper, its ONNX export, the whitened PCA basis and the
OOD score, the predictor's `Scored.features`, and the frame's colour cast."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from inspection.core.domain import Localisation, LocalisationMode
from inspection.vision.artifact import ModelMeta, export_onnx
from inspection.vision.features import FeaturePCA, out_of_fold_ood
from inspection.vision.images import image_metrics
from inspection.vision.model import NetConfig, ScoringNet, ScratchNet
from inspection.vision.predictor import Predictor, onnx_forward
from inspection.vision.preprocess import PreprocessSpec

SPEC = PreprocessSpec(mode="resize", canvas_h=64, canvas_w=32)
D = 112  # channels of the backbone's last block (11 blocks)


@pytest.fixture(scope="module")
def net() -> ScratchNet:
    torch.manual_seed(0)
    return ScratchNet(NetConfig()).eval()


def _meta(**kw: object) -> ModelMeta:
    return replace(ModelMeta(version="feat-test", net=NetConfig(), preprocess=SPEC), **kw)  # type: ignore[arg-type]


def _reference(n: int = 400, d: int = 40, seed: int = 0) -> np.ndarray:
    """Correlated Gaussian features: a few strong directions plus weak noise everywhere."""
    mixing = np.random.default_rng(99).normal(size=(d, d)) * np.linspace(3.0, 0.1, d)[:, None]  # one population
    return np.random.default_rng(seed).normal(size=(n, d)) @ mixing + 5.0


def test_scoring_net_adds_pooled_features_without_changing_the_scores(net: ScratchNet) -> None:
    x = torch.randn(3, 3, 64, 32)
    with torch.inference_mode():
        logit, cells = net(x)
        logit2, cells2, feats = ScoringNet(net)(x)
        expected = net.features(x).mean(dim=(2, 3))
    assert torch.equal(logit, logit2) and torch.equal(cells, cells2)
    assert feats.shape == (3, D) and torch.allclose(feats, expected)


def test_onnx_and_torch_paths_agree_on_every_output(net: ScratchNet, tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    export_onnx(net, _meta(), path)
    x = np.random.default_rng(1).normal(size=(5, 3, 64, 32)).astype(np.float32)
    onnx_out = onnx_forward(path, threads=1)(x)
    torch_out = Predictor(net, _meta(), threads=1).forward(x)
    for a, b in zip(onnx_out, torch_out, strict=True):
        assert a is not None and b is not None
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
    assert onnx_out[2] is not None and onnx_out[2].shape == (5, D)


def test_pca_whitens_the_reference_and_round_trips_through_json() -> None:
    feats = _reference()
    pca = FeaturePCA.fit(feats, k=8)
    z = pca.project(feats)
    assert z.shape == (400, 8)
    np.testing.assert_allclose(z.mean(axis=0), 0.0, atol=1e-9)
    np.testing.assert_allclose(z.std(axis=0, ddof=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(pca.components @ pca.components.T, np.eye(8), atol=1e-9)
    assert np.mean(pca.ood(feats)) == pytest.approx(1.0, rel=1e-2)  # both parts are ~1 on the reference
    back = FeaturePCA.from_json(pca.to_json())
    assert back is not None and (back.dim, back.k) == (40, 8)
    np.testing.assert_allclose(back.project(feats[:5]), z[:5], rtol=1e-4, atol=1e-4)  # 6 significant digits


def test_ood_score_is_about_one_in_distribution_and_large_for_shifted_or_novel_features() -> None:
    feats = _reference()
    pca = FeaturePCA.fit(feats, k=8)
    fresh = _reference(seed=1)[:200]  # same distribution, unseen
    assert np.median(pca.ood(fresh)) < 1.5
    along = fresh + 12.0 * pca.components[0] * pca.scale[0]  # far along a known direction: T2
    novel = fresh + 3.0 * np.sqrt(pca.residual) * (np.eye(40)[-1] - pca.components.T @ pca.components[:, -1])
    assert np.median(pca.ood(along)) > 3.0
    assert np.median(pca.ood(novel)) > 3.0


def test_out_of_fold_scores_are_not_biased_low() -> None:
    feats = _reference(n=120, d=60)
    in_sample = FeaturePCA.fit(feats, k=8).ood(feats)
    held = out_of_fold_ood(feats, k=8)
    fresh = FeaturePCA.fit(feats, k=8).ood(_reference(n=400, d=60, seed=3))
    # the limit's reference must look like new images, not like the images the basis was fitted on
    q_held, q_in, q_fresh = (float(np.quantile(v, 0.9)) for v in (held, in_sample, fresh))
    assert q_held > q_in
    assert abs(q_held - q_fresh) < abs(q_in - q_fresh)


@pytest.mark.parametrize("bad", [
    {"mean": [0.0, 0.0], "components": [[1.0, 0.0]], "scale": [0.0]},
    {"mean": [0.0], "components": [[1.0, 0.0]], "scale": [1.0]},
    {"components": [[1.0, 0.0]], "scale": [1.0]},
])
def test_malformed_feature_blocks_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="monitor.features"):
        FeaturePCA.from_json(bad)
    assert FeaturePCA.from_json(None) is None and FeaturePCA.from_json({}) is None


def test_predictor_projects_features_and_measures_ood_only_with_a_basis(net: ScratchNet) -> None:
    rng = np.random.default_rng(2)
    images = [rng.integers(0, 256, (96, 48, 3), dtype=np.uint8) for _ in range(20)]
    plain = Predictor(net, _meta(), threads=1)
    raw = plain.score_prepared_raw([plain.prepare_image(im) for im in images])
    assert all(s.features == () and "ood" not in s.quality for s, _ in raw)
    feats = np.stack([f for _, f in raw if f is not None])
    pca = FeaturePCA.fit(feats, k=8)
    with_basis = Predictor(net, _meta(monitor={"features": pca.to_json()}), threads=1)
    scored = with_basis.score(images[:3])
    for s, f in zip(scored, feats[:3], strict=True):
        assert len(s.features) == 8
        np.testing.assert_allclose(s.features, pca.project(f[None])[0], atol=2e-3)
        assert s.quality["ood"] == pytest.approx(float(pca.ood(f[None])[0]), rel=1e-3)


def test_colour_cast_is_zero_for_neutral_frames_and_grows_with_a_tint() -> None:
    grey = np.full((120, 160, 3), 100, np.uint8)
    assert image_metrics(grey).colour_cast == pytest.approx(0.0)
    assert image_metrics(grey[..., 0]).colour_cast == 0.0
    warm = grey.copy()
    warm[..., 2] += 30  # red up
    warm[..., 0] -= 10  # blue down (BGR)
    assert image_metrics(warm).colour_cast == pytest.approx(40.0)


def test_the_station_localisation_reaches_the_warp(net: ScratchNet) -> None:
    phone_mode = Predictor(net, _meta(preprocess=PreprocessSpec(mode="phone", canvas_h=64, canvas_w=32)), threads=1)
    noise = np.random.default_rng(5).integers(0, 256, (90, 160, 3), dtype=np.uint8)
    [frame] = phone_mode.score([noise], localisation=Localisation(LocalisationMode.FRAME))
    [roi] = phone_mode.score([noise], localisation=Localisation(LocalisationMode.ROI, (0.1, 0.1, 0.5, 0.8)))
    # neither mode ever says "no phone found"; each inspects its own region of the same frame
    assert frame.prediction.score is not None and roi.prediction.score is not None
    assert frame.prediction.score != roi.prediction.score
    assert frame.quality["region_px"] != roi.quality["region_px"]
