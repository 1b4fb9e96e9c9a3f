"""Peak RSS of a fresh process after 1,000 requests: a function's ``app.py`` imported as Lambda's
init does, invoked with API Gateway events, against a bare boto3 loop (``tests.bench.floor``)
making the same DynamoDB calls. The events are built here and passed on stdin, so the function's
process imports nothing but the function.

The peak is the kernel's VmHWM of the process (/proc/self/status), not ``getrusage``'s maxrss:
Linux carries maxrss across exec, so a child of this (large) process would report the parent's
size whatever it did."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
REQUESTS = 1000

PROJECT = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("app", sys.argv[1])
app = importlib.util.module_from_spec(spec)
spec.loader.exec_module(app)
class Context:
    function_name = "bench"
    function_version = "$LATEST"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench"
    aws_request_id = "bench"
    def get_remaining_time_in_millis(self):
        return 10_000
events = json.load(sys.stdin)
for n in range(int(sys.argv[2])):
    assert app.lambda_handler(events[n % len(events)], Context())["statusCode"] == 200
print("maxrss_kb", next(l.split()[1] for l in open("/proc/self/status") if l.startswith("VmHWM:")))
"""

BARE = """
import json, os, sys
import boto3
from tests.bench.floor import Floor
client = boto3.client("dynamodb", endpoint_url=os.environ["DYNAMODB_ENDPOINT_URL"])
floor = Floor(client, os.environ["ENCOUNTER_TABLE"])
calls = json.load(sys.stdin)
for n in range(int(sys.argv[1])):
    method, *arguments = calls[n % len(calls)]
    getattr(floor, method)(*arguments)
print("maxrss_kb", next(l.split()[1] for l in open("/proc/self/status") if l.startswith("VmHWM:")))
"""


def project_rss_mb(function: str, events: list[dict[str, Any]], environment: dict[str, str]) -> float:
    app = ROOT / "functions" / function / "app.py"
    return _run([PROJECT, str(app), str(REQUESTS)], events, environment)


def bare_rss_mb(calls: list[list[Any]], environment: dict[str, str]) -> float:
    """``calls``: [method of Floor, its arguments...], made in turn."""
    return _run([BARE, str(REQUESTS)], calls, environment)


def _run(arguments: list[str], given: Any, environment: dict[str, str]) -> float:
    out = subprocess.run(
        [sys.executable, "-c", *arguments],
        cwd=ROOT,
        env={**os.environ, **environment},
        input=json.dumps(given),
        capture_output=True,
        text=True,
        check=False,
    )
    lines = [line for line in out.stdout.splitlines() if line.startswith("maxrss_kb ")]
    if out.returncode or not lines:
        raise RuntimeError(f"RSS run failed: {out.stderr.strip().splitlines()[-3:]}")
    return int(lines[-1].split()[1]) / 1024
