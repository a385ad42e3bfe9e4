"""Several processes upgrading one fresh database at the same moment (issue 13): `serve --workers N`, or
two machines started together. Every one must start (exit 0) and the schema must end at head, built
once: `upgrade_database` lets one process migrate while the others wait, then find it at head.

The processes are real (`sys.executable -c`), started together behind a barrier: each imports the
package, says it is ready, and waits for one start file, so that the upgrades themselves overlap.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from inspection import store
from inspection.store.db import SCHEMA_LOCK
from inspection.store.locks import LockTimeout, exclusive

HEAD = "0009_inspector"  # as tests/integration/test_store.py
PROCESSES = 4
BARRIER_S = 60.0  # imports on 2 busy cores; the upgrades themselves take a few seconds

_CHILD = """
import os, sys, time
from pathlib import Path
from inspection import store
ready, go = Path(sys.argv[1]), Path(sys.argv[2])
ready.touch()
deadline = time.monotonic() + float(sys.argv[3])
while not go.exists():
    if time.monotonic() > deadline:
        sys.exit("no start signal")
    time.sleep(0.002)
store.upgrade_database(os.environ["SCHEMA_TEST_URL"])
"""


def _start_together(url: str, workdir: Path) -> list[tuple[int, str]]:
    """Run PROCESSES upgrades released at one moment; (exit status, stderr tail) for each."""
    go = workdir / "go"
    ready = [workdir / f"ready-{i}" for i in range(PROCESSES)]
    env = os.environ | {"SCHEMA_TEST_URL": url}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(r), str(go), str(BARRIER_S)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        for r in ready
    ]  # fmt: skip
    try:
        deadline = time.monotonic() + BARRIER_S
        while not all(r.exists() for r in ready) and time.monotonic() < deadline:
            if any(p.poll() is not None for p in procs):
                break  # one died while importing: its stderr says why below
            time.sleep(0.01)
        go.touch()
        return [(p.returncode, err[-3000:]) for p in procs for _, err in [p.communicate(timeout=BARRIER_S)]]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def test_processes_started_together_all_upgrade_a_fresh_database(database_url: str, tmp_path: Path) -> None:
    results = _start_together(database_url, tmp_path)
    failed = [err for code, err in results if code != 0]
    assert not failed, f"{len(failed)} of {PROCESSES} failed; first:\n{failed[0] if failed else ''}"
    eng = store.make_engine(database_url)
    try:
        assert store.current_revision(eng) == HEAD
    finally:
        eng.dispose()


def test_a_hung_upgrade_elsewhere_gives_a_clear_error_not_an_endless_wait(database_url: str) -> None:
    eng = store.make_engine(database_url)
    try:
        with exclusive(eng, name=SCHEMA_LOCK):  # another process stuck in its upgrade
            started = time.monotonic()
            with pytest.raises(LockTimeout, match="schema-upgrade"):
                store.upgrade_database(database_url, lock_wait_s=0.5)
            assert 0.4 < time.monotonic() - started < 10
        assert store.current_revision(eng) is None  # nothing was half-done
        store.upgrade_database(database_url, lock_wait_s=0.5)  # released: the next start upgrades
        assert store.current_revision(eng) == HEAD
    finally:
        eng.dispose()
