"""DynamoDB Local, as the fixtures and `serve` start it: reachable from this machine only, and
never outliving the process that started it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fhir_encounter_tools.devserver.dynamodb_local import find_jar_dir, find_java, free_port, java_command
from tests.support import ROOT

pytestmark = pytest.mark.integration

LISTEN = "0A"
# 127.0.0.1 in /proc/net/tcp, and as an IPv4-mapped address in /proc/net/tcp6.
LOOPBACK = {"0100007F", "0000000000000000FFFF00000100007F", "00000000000000000000000001000000"}
STARTER = """
import time
from fhir_encounter_tools.devserver.dynamodb_local import dynamodb_local
with dynamodb_local() as endpoint:
    print(endpoint, flush=True)
    time.sleep(120)
"""
GONE_SECONDS = 10.0


def listening_addresses(port: int) -> set[str]:
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == LISTEN and int(hex_port, 16) == port:
                found.add(address)
    return found


def children(parent_pid: int) -> set[int]:
    """The live DynamoDB Local processes that ``parent_pid`` started."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            if ppid == parent_pid and b"LoopbackDynamoDBLocal" in (stat.parent / "cmdline").read_bytes():
                found.add(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    return {pid for pid in found if alive(pid)}


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, waiting to be reaped, has exited)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def test_dynamodb_local_listens_on_loopback_only(dynamodb_endpoint: str) -> None:
    port = int(dynamodb_endpoint.rsplit(":", 1)[1])
    addresses = listening_addresses(port)
    assert addresses, f"nothing listens on port {port}"
    assert addresses <= LOOPBACK, addresses


def test_dynamodb_local_exits_when_its_starter_is_killed_with_sigkill() -> None:
    starter = subprocess.Popen([sys.executable, "-c", STARTER], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    java: set[int] = set()
    try:
        assert starter.stdout is not None
        endpoint = starter.stdout.readline().strip()
        assert endpoint.startswith("http://127.0.0.1:"), endpoint
        java = children(starter.pid)
        assert len(java) == 1
        port = int(endpoint.rsplit(":", 1)[1])
        starter.kill()  # no cleanup can run: DynamoDB Local has to notice by itself
        starter.wait()
        deadline = time.monotonic() + GONE_SECONDS
        while {pid for pid in java if alive(pid)} and time.monotonic() < deadline:
            time.sleep(0.1)
        assert {pid for pid in java if alive(pid)} == set()
        assert listening_addresses(port) == set()
    finally:
        if starter.poll() is None:
            starter.kill()
            starter.wait()
        for pid in java:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_dynamodb_local_does_not_start_for_a_parent_that_is_gone() -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    command = java_command(find_java(), find_jar_dir(ROOT), free_port(), parent_pid=gone.pid)
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1
    assert "the parent process is gone; not starting" in result.stderr
