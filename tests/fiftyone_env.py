"""Real FiftyOne for the export tests: a loader script run in the tool environment that `make tools`
builds (`.venv-tools/fiftyone`; the main environment never imports fiftyone), with its database
(FiftyOne's bundled `mongod`) in a temporary folder of the test. FiftyOne starts that mongod for the
loader (127.0.0.1, a port it picks) and stops it when the loader exits; `load` checks that it did.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
FO_PYTHON = REPO / ".venv-tools" / "fiftyone" / "bin" / "python"
LOAD_TIMEOUT_S = 240.0  # mongod start (~5 s) + three small imports, on two busy cores
MONGOD_EXIT_S = 30.0  # FiftyOne's service watcher stops mongod shortly after its last client exits

# Run by FO_PYTHON: argv[1] is a JSON object {kind: folder}; prints what FiftyOne loaded as JSON.
LOADER = r'''
import json, os, sys
import fiftyone as fo
from fiftyone import ViewField as F

def plain(v):
    if v is None or isinstance(v, (str, int, float, bool)):
        return v
    if hasattr(v, "isoformat"):
        return v.isoformat()
    if isinstance(v, fo.Classification):
        return {"label": v.label, "confidence": v.confidence, "id": v.id}
    if isinstance(v, fo.Detections):
        return [{"label": d.label, "bounding_box": d.bounding_box, "confidence": d.confidence, "id": d.id}
                for d in v.detections]
    if isinstance(v, fo.Metadata):
        return {"width": v.width, "height": v.height}
    if isinstance(v, list):
        return [plain(x) for x in v]
    return repr(v)

def describe(ds, with_schema=True):
    schema = ds.get_field_schema()
    out = {
        "samples": [
            {"file": os.path.basename(s.filepath), "exists": os.path.isfile(s.filepath),
             **{k: plain(s[k]) for k in schema if k not in ("id", "filepath", "created_at", "last_modified_at")}}
            for s in ds
        ],
        "schema": {k: type(f).__name__ + ("" if getattr(f, "document_type", None) is None
                                          else ":" + f.document_type.__name__) for k, f in schema.items()},
    }
    return out

folders = json.loads(sys.argv[1])
result = {}
if "fiftyone" in folders:
    ds = fo.Dataset.from_dir(dataset_dir=folders["fiftyone"], dataset_type=fo.types.FiftyOneDataset)
    result["fiftyone"] = describe(ds)
    # the declared schema must also carry FiftyOne's own queries
    result["fiftyone"]["queries"] = {
        "count_values": ds.count_values("ground_truth.label"),
        "regions": ds.count("regions.detections"),
        "confident_scratches": len(ds.filter_labels("prediction", F("confidence") > 0.5)),
        "bounds_score": list(ds.bounds("score")),
        "by_station": ds.count_values("station"),
    }
    ds.delete()
if "imagefolder" in folders:
    ds = fo.Dataset.from_dir(dataset_dir=folders["imagefolder"],
                             dataset_type=fo.types.ImageClassificationDirectoryTree)
    result["imagefolder"] = describe(ds)
    ds.delete()
if "coco" in folders:
    root = folders["coco"]
    ds = fo.Dataset.from_dir(dataset_type=fo.types.COCODetectionDataset, data_path=root,
                             labels_path=os.path.join(root, "coco.json"), label_types=["detections"], include_id=True)
    # FiftyOne's COCO importer keeps boxes and the image id only: the item's fields come from the
    # image entries' `inspection` key, matched by that id (the recipe the README gives)
    with open(os.path.join(root, "coco.json")) as fh:
        by_id = {i["id"]: i["inspection"] for i in json.load(fh)["images"]}
    for key in ("label", "score", "station", "model_version", "decided_by"):
        ds.set_values(key, [by_id[i][key] for i in ds.values("coco_id")])
    result["coco"] = describe(ds)
    ds.delete()
print("RESULT " + json.dumps(result))
'''


def fiftyone_python() -> Path:
    if not FO_PYTHON.is_file():
        pytest.fail(f"FiftyOne is not installed at {FO_PYTHON}: run `make tools`")
    return FO_PYTHON


def _mongods(db_dir: Path) -> list[int]:
    """Ids of the mongod processes serving `db_dir` (only this test's database)."""
    pattern = f"mongod.*{re.escape(str(db_dir))}"
    found = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True, check=False)
    return [int(p) for p in found.stdout.split()]


def _stop(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)


def load(folders: dict[str, Path], db_dir: Path) -> dict[str, Any]:
    """What real FiftyOne loads from each export folder ({kind: folder}), kind one of fiftyone,
    imagefolder, coco. Fails (never skips) without the tool environment."""
    env = {
        **os.environ,
        "FIFTYONE_DATABASE_DIR": str(db_dir),
        "FIFTYONE_DO_NOT_TRACK": "true",
        "FIFTYONE_DATABASE_ADMIN": "true",
        "FIFTYONE_SHOW_PROGRESS_BARS": "false",
        "HOME": str(db_dir.parent),  # ~/.fiftyone (config, logs) stays inside the test's folder
    }
    env.pop("FIFTYONE_DATABASE_URI", None)
    arg = json.dumps({k: str(v) for k, v in folders.items()})
    try:
        proc = subprocess.run(
            [str(fiftyone_python()), "-c", LOADER, arg], env=env, capture_output=True, text=True,
            timeout=LOAD_TIMEOUT_S, check=False,
        )
        deadline = time.monotonic() + MONGOD_EXIT_S
        while _mongods(db_dir) and time.monotonic() < deadline:
            time.sleep(0.5)
        left = _mongods(db_dir)
    finally:
        _stop(_mongods(db_dir))  # a timed-out loader leaves its mongod: stop it by its id
    assert left == [], f"mongod still running after FiftyOne exited: {left}"
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, f"FiftyOne loader failed ({proc.returncode}):\n{proc.stderr[-4000:]}"
    result: dict[str, Any] = json.loads(lines[-1].removeprefix("RESULT "))
    return result
