"""Every module of the pure core (inspection.core) must not pull in heavy or I/O frameworks."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import pytest

import inspection.core

# Discovered, not listed: a module added to core later is covered without touching this test.
PURE = sorted(
    ["inspection.core", *(m.name for m in pkgutil.walk_packages(inspection.core.__path__, "inspection.core."))]
)
FORBIDDEN = ["torch", "torchvision", "sqlmodel", "sqlalchemy", "gradio", "cv2", "fastapi"]


def test_the_core_package_is_discovered() -> None:
    assert {"inspection.core.stats", "inspection.core.thresholds", "inspection.core.metrics"} <= set(PURE)


@pytest.mark.parametrize("module", PURE)
def test_pure_module_imports_no_framework(module: str) -> None:
    code = (
        f"import sys, importlib; importlib.import_module({module!r}); "
        f"print(','.join(m for m in {FORBIDDEN!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"{module} imported {out.stdout.strip()}"
