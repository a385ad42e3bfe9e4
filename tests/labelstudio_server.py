"""A real Label Studio server for the export tests: started once per session from the tool
environment that `make tools` builds (`.venv-tools/labelstudio`), on 127.0.0.1 and a free port,
with its own SQLite database in a temporary folder, a preset user and API token, and local-files
serving rooted at `LabelStudio.root` (exports written there can be served). Stopped by the fixture.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
LS_BIN = REPO / ".venv-tools" / "labelstudio" / "bin" / "label-studio"
START_TIMEOUT_S = 90.0  # migrations on a fresh SQLite take ~30 s on two busy cores
USER, PASSWORD, TOKEN = "tester@example.com", "test-password-1", "inspection-test-token-0123456789"


@dataclass(frozen=True)
class LabelStudio:
    url: str
    token: str
    root: Path  # LOCAL_FILES_DOCUMENT_ROOT: write exports under it
    log: Path

    def request(self, method: str, path: str, body: Any = None, *, auth: bool = True) -> tuple[int, bytes]:
        """(status, body) of one HTTP call; error statuses are returned, not raised."""
        data = None if body is None else json.dumps(body).encode()
        headers = {"Authorization": f"Token {self.token}"} if auth else {}
        if data is not None:
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def api(self, method: str, path: str, body: Any = None, *, expect: int = 200) -> Any:
        """The JSON answer of an API call that must answer `expect` (else fail with its body)."""
        status, raw = self.request(method, path, body)
        assert status == expect, f"{method} {path}: {status} {raw[:2000]!r}"
        return json.loads(raw) if raw else None

    def log_tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else "(no log)"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_env(home: Path, root: Path) -> dict[str, str]:
    """A clean environment: none of ours (DATABASE_URL, DJANGO_*...) leaks into the server."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),  # it writes ~/.config/label-studio
        "LANG": "C.UTF-8",
        "LABEL_STUDIO_BASE_DATA_DIR": str(home / "data"),  # its SQLite database and media
        "DJANGO_DB": "sqlite",
        "SECRET_KEY": "inspection-tests-only-not-secret",
        "LABEL_STUDIO_USERNAME": USER,
        "LABEL_STUDIO_PASSWORD": PASSWORD,
        "LABEL_STUDIO_USER_TOKEN": TOKEN,
        # The preset token is a legacy token; 1.23 issues JWT personal access tokens by default.
        "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
        "LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED": "true",
        "LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT": str(root),
        # No outside network here: nothing may try to reach PyPI, analytics or Sentry.
        "LATEST_VERSION_CHECK": "false",
        "COLLECT_ANALYTICS": "false",
        "CONVERTER_DOWNLOAD_RESOURCES": "false",
        "SENTRY_DSN": "",
        "FRONTEND_SENTRY_DSN": "",
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
    }


def _wait_ready(ls: LabelStudio, proc: subprocess.Popen[bytes], deadline: float) -> None:
    """Until the API answers the preset user's token; fail with the log tail when it never does."""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"Label Studio exited with {proc.returncode} while starting; log:\n{ls.log_tail()}")
        try:
            status, _ = ls.request("GET", "/api/current-user/whoami")
        except OSError:  # not listening yet
            status = 0
        if status == 200:
            return
        time.sleep(0.5)
    pytest.fail(f"Label Studio did not answer within {START_TIMEOUT_S:.0f} s; log:\n{ls.log_tail()}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Its own process group (runserver may fork): TERM, then KILL after 10 s."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@pytest.fixture(scope="session")
def label_studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabelStudio]:
    if not LS_BIN.is_file():
        pytest.fail(f"Label Studio is not installed at {LS_BIN}: run `make tools`")
    home = tmp_path_factory.mktemp("label-studio")
    root = home / "exports"
    root.mkdir()
    port = free_port()
    ls = LabelStudio(url=f"http://127.0.0.1:{port}", token=TOKEN, root=root, log=home / "server.log")
    # --internal-host binds the socket; --host only shapes the URLs it generates.
    cmd = [str(LS_BIN), "start", "--no-browser", "--internal-host", "127.0.0.1", "--port", str(port)]
    cmd.append("--enable-legacy-api-token")  # the organisation it creates accepts the preset token
    with ls.log.open("wb") as log:
        proc = subprocess.Popen(
            cmd, cwd=home, env=server_env(home, root), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        _wait_ready(ls, proc, time.monotonic() + START_TIMEOUT_S)
        yield ls
    finally:
        _stop(proc)
