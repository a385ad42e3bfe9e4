"""The pure core (domain, policy, thresholds, stats) must not pull in heavy or I/O frameworks."""

from __future__ import annotations

import subprocess
import sys

import pytest

PURE = ["inspection.core.domain", "inspection.core.policy", "inspection.core.thresholds", "inspection.core.stats"]
FORBIDDEN = ["torch", "torchvision", "sqlmodel", "sqlalchemy", "gradio", "cv2", "fastapi"]


@pytest.mark.parametrize("module", PURE)
def test_pure_module_imports_no_framework(module: str) -> None:
    code = (
        f"import sys, importlib; importlib.import_module({module!r}); "
        f"print(','.join(m for m in {FORBIDDEN!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"{module} imported {out.stdout.strip()}"
