"""Headless Chromium for the browser tests: found on PATH, else installed with Debian's apt-get
(as root only: `apt-get install -y chromium`, Debian's own mirror, nothing else), else a reason."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

NAMES = ("chromium", "chromium-browser", "google-chrome")
INSTALL_SECONDS = 900


def chromium() -> tuple[str | None, str]:
    """(the browser's path, "") or (None, why there is none)."""
    found = _found()
    if found:
        return found, ""
    if shutil.which("apt-get") is None:
        return None, "no chromium on PATH and no apt-get to install it"
    if os.geteuid() != 0:
        return None, "no chromium on PATH; install it (apt-get install chromium) or run as root"
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]
    for before in ([], [["apt-get", "update"]]):  # stale package lists: update once, then again
        for command in [*before, install]:
            subprocess.run(
                command, env=environment, capture_output=True, timeout=INSTALL_SECONDS, check=False
            )
        if found := _found():
            return found, ""
    return None, "apt-get could not install chromium"


def dump_dom(browser: str, url: str, profile: Path, budget_ms: int = 15000) -> str:
    """The page's DOM once its scripts have run (``--dump-dom``; no DevTools protocol)."""
    command = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        f"--virtual-time-budget={budget_ms}",
        "--dump-dom",
        url,
    ]
    run = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    return run.stdout


def _found() -> str | None:
    return next((path for name in NAMES if (path := shutil.which(name))), None)
