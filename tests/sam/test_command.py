"""`make sam-local` (``python -m fhir_encounter_tools.samlocal up``) end to end: it serves the
patient search from Lambda containers on 127.0.0.1, and Ctrl-C stops what it started: `sam local`
and its containers, and its DynamoDB Local. (It reuses the session's build: a second `sam build`
would replace the code under the session's running containers.)"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from fhir_encounter_tools.devserver.dynamodb_local import free_port
from fhir_encounter_tools.ingest.seed import SEED, SEED_PATIENT, synthetic_encounters
from fhir_encounter_tools.samlocal.stack import SEED_COUNT, SamLocal
from tests.support import ROOT, Api, ids_of

READY_LINE = "Serving FHIR Encounter API from Lambda containers on "
READY_SECONDS = 300.0


def containers_with(variable: str) -> set[str]:
    """The Lambda containers whose environment holds ``variable`` (NAME=value): with a cursor key
    that only one env.json has, those of one `sam local`, whatever else runs beside it."""
    listed = subprocess.run(
        ["docker", "ps", "-aq", "--filter", "label=sam.cli.container.type=lambda"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    if not listed:
        return set()
    inspected = subprocess.run(  # a container gone meanwhile is left out (exit status 1)
        ["docker", "inspect", "--format", "{{.Id}}{{range .Config.Env}} {{.}}{{end}}", *listed],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return {line.split()[0] for line in inspected.splitlines() if variable in line.split()[1:]}


def dynamodb_locals_of(pid: int) -> set[int]:
    """The DynamoDB Local processes that process ``pid`` started (they name it as their parent)."""
    found = set()
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if f"-Dloopback.parentPid={pid}\0".encode() in cmdline.read_bytes():
                found.add(int(cmdline.parent.name))
        except OSError:
            continue
    return found


def test_sam_local_up_serves_the_patient_search_and_ctrl_c_stops_everything_it_started(
    local: SamLocal, sam_cli: str, tmp_path: Path
) -> None:
    port = free_port()
    output = tmp_path / "up.txt"
    command = [sys.executable, "-m", "fhir_encounter_tools.samlocal", "up", "--sam", sam_cli]
    with output.open("wb") as out:
        process = subprocess.Popen(
            [*command, "--port", str(port), "--reuse-build"],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + READY_SECONDS
        while READY_LINE not in output.read_text() and time.monotonic() < deadline:
            assert process.poll() is None, output.read_text()
            time.sleep(0.5)
        assert f"{READY_LINE}http://127.0.0.1:{port}" in output.read_text()
        reply = Api(f"http://127.0.0.1:{port}").search(f"patient={SEED_PATIENT}&_count=100")
        expected = sorted(
            resource["id"]
            for resource in synthetic_encounters(SEED_COUNT, SEED)
            if resource["subject"]["reference"] == f"Patient/{SEED_PATIENT}"
        )
        assert reply.status == 200
        assert sorted(ids_of(reply.body)) == expected
        functions = json.loads((ROOT / "env.json").read_text())
        (secret,) = {environment["CURSOR_SECRET"] for environment in functions.values()}
        started = containers_with(f"CURSOR_SECRET={secret}")
        databases = dynamodb_locals_of(process.pid)
        assert len(started) >= len(functions)  # a warm container for each function, at least
        assert len(databases) == 1
    finally:
        process.send_signal(signal.SIGINT)
        status = process.wait(timeout=180)
    assert status == 0, output.read_text()
    assert "Stopped: sam local, its containers and DynamoDB Local" in output.read_text()
    assert containers_with(f"CURSOR_SECRET={secret}") == set()
    assert not {pid for pid in databases if Path(f"/proc/{pid}").exists()}
