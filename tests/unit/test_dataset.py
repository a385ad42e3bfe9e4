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


def labelme(shapes: list[tuple[str, str, list[list[float]]]], w: int = 200, h: int = 100) -> str:
    import json

    return json.dumps({"imageWidth": w, "imageHeight": h, "imageData": None,
                       "shapes": [{"label": lab, "shape_type": kind, "points": pts} for lab, kind, pts in shapes]})


@pytest.mark.parametrize(
    ("kind", "points", "inside", "outside"),
    [
        ("rectangle", [[10, 10], [30, 20]], (30, 30), (70, 30)),
        ("polygon", [[10, 10], [60, 10], [60, 40], [10, 40]], (30, 40), (150, 150)),
        ("linestrip", [[10, 50], [150, 50]], (50, 100), (10, 100)),
    ],
)
def test_labelme_shapes_of_the_scratch_label_become_the_mask(
    tmp_path: Path, kind: str, points: list[list[float]], inside: tuple[int, int], outside: tuple[int, int]
) -> None:
    images = tmp_path / "images"
    make_folder(images, {"scratch": 1, "ok": 1})
    (tmp_path / "annotations").mkdir()
    # the JSON was drawn on a 200x100 image; the frame is 400x200, so points scale by 2
    shapes = [("scratch", kind, points), ("dust_spot", "rectangle", [[80, 80], [90, 90]])]
    (tmp_path / "annotations" / "scratch_0.json").write_text(labelme(shapes))
    mask = truth_mask(images, Example(images / "scratch" / "scratch_0.png", 1, "scratch"), (400, 200))
    assert mask is not None and mask.shape == (200, 400)
    assert mask[inside[1], inside[0]] == 255 and mask[outside[1], outside[0]] == 0
    assert mask[170, 170] == 0  # dust is not a scratch


def test_a_class_index_mask_defers_to_the_labelme_file_that_names_the_classes(tmp_path: Path) -> None:
    make_folder(tmp_path, {"scratch": 1, "ok": 1})
    (tmp_path / "masks").mkdir()
    index_mask = np.zeros((100, 200), np.uint8)
    index_mask[:, :100] = 2  # "2 = scratch" lives in a README, not in the file
    cv2.imwrite(str(tmp_path / "masks" / "scratch_0.png"), index_mask)
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "scratch_0.json").write_text(labelme([
        ("ca_shang", "linestrip", [[0, 5], [50, 5]]),  # pinyin for "scratch", as the aluminum set labels it
        ("zang_wu", "polygon", [[150, 60], [190, 60], [190, 90]]),  # dirt: a look-alike, never the truth
    ]))
    example = Example(tmp_path / "scratch" / "scratch_0.png", 1, "scratch")
    default = truth_mask(tmp_path, example, (200, 100))
    assert default is not None and default[5, 20] == 255 and default[50, 20] == 0 and not default[70:, 150:].any()
    custom = truth_mask(tmp_path, example, (200, 100), labels=frozenset({"zang_wu"}))
    assert custom is not None and not custom[5, 20] and custom[80, 185] == 255
