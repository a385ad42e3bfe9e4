"""ImageFolder listing, stratified splits and ground truth from masks or VOC boxes."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from inspection.vision.dataset import DatasetError, Example, list_imagefolder, stratified_split, truth_mask

VOC = """<annotation><object><name>scratches</name><bndbox>
<xmin>10</xmin><ymin>20</ymin><xmax>30</xmax><ymax>60</ymax></bndbox></object></annotation>"""


def make_folder(root: Path, classes: dict[str, int]) -> None:
    for cls, n in classes.items():
        (root / cls).mkdir(parents=True)
        for i in range(n):
            cv2.imwrite(str(root / cls / f"{cls}_{i}.png"), np.zeros((8, 8, 3), np.uint8))


def test_every_other_class_folder_is_a_negative(tmp_path: Path) -> None:
    make_folder(tmp_path, {"scratches": 2, "crazing": 3, "patches": 1})
    (tmp_path / "annotations").mkdir()
    examples = list_imagefolder(tmp_path, positive="scratches")
    assert sorted((e.cls, e.label) for e in examples)[0] == ("crazing", 0)
    assert sum(e.label for e in examples) == 2 and len(examples) == 6


@pytest.mark.parametrize(("classes", "message"), [
    ({"ok": 3}, "no positive class"),
    ({"scratch": 3}, "at least one negative"),
])
def test_unusable_folders_are_refused_with_the_reason(tmp_path: Path, classes: dict[str, int], message: str) -> None:
    make_folder(tmp_path, classes)
    with pytest.raises(DatasetError, match=message):
        list_imagefolder(tmp_path, positive="scratch")


def test_stratified_split_holds_out_the_same_share_of_each_class() -> None:
    labels = [1] * 20 + [0] * 80
    rest, held = stratified_split(labels, fraction=0.25, seed=3)
    assert sum(labels[i] for i in held) == 5 and len(held) == 25
    assert sorted(rest + held) == list(range(100))
    assert stratified_split(labels, fraction=0.25, seed=3) == (rest, held)


@pytest.mark.parametrize("annotations_at", ["beside", "above"])
def test_voc_boxes_become_a_mask_for_positives_only(tmp_path: Path, annotations_at: str) -> None:
    images = tmp_path / "images"
    make_folder(images, {"scratches": 1, "crazing": 1})
    ann = (images if annotations_at == "beside" else tmp_path) / "annotations"
    ann.mkdir()
    (ann / "scratches_0.xml").write_text(VOC)
    (ann / "crazing_0.xml").write_text(VOC)
    pos = truth_mask(images, Example(images / "scratches" / "scratches_0.png", 1, "scratches"), (100, 100))
    neg = truth_mask(images, Example(images / "crazing" / "crazing_0.png", 0, "crazing"), (100, 100))
    assert pos is not None and neg is not None
    assert pos[40, 20] == 255 and pos[5, 5] == 0 and int(pos.sum()) // 255 == 21 * 41
    assert not neg.any()  # boxes around other defects are not scratches


def test_no_ground_truth_means_none(tmp_path: Path) -> None:
    make_folder(tmp_path, {"scratch": 1, "ok": 1})
    assert truth_mask(tmp_path, Example(tmp_path / "ok" / "ok_0.png", 0, "ok"), (8, 8)) is None
