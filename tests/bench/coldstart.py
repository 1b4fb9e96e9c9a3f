"""Cold start against the floor: a fresh Python process that imports the read function and answers
one read (Lambda's init, then its first invocation), against a fresh process that imports boto3,
builds a DynamoDB client and makes the same GetItem. Interleaved runs, medians.

Both clocks start at the script's first line (the interpreter's own start is the same for both). The
read function runs with the template's environment: metrics and logging on, tracing as Powertools
decides it outside Lambda (off: there is no X-Ray daemon here). "After init" is what a SnapStart
restore leaves to do: the first request on the client that init built (a new connection included).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from tests.bench.rows import Row, row

ROOT = Path(__file__).resolve().parents[2]
READ_APP = ROOT / "functions" / "read_encounter" / "app.py"
TARGET = "<= 1.5"

PROJECT = """
import time
started = time.perf_counter()
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("read_encounter_app", sys.argv[1])
app = importlib.util.module_from_spec(spec)
spec.loader.exec_module(app)
initialised = time.perf_counter()
class Context:
    function_name = "read"
    function_version = "$LATEST"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:read"
    aws_request_id = "cold"
response = app.lambda_handler(json.loads(sys.argv[2]), Context())
assert response["statusCode"] == 200, response["statusCode"]
done = time.perf_counter()
print(json.dumps([(initialised - started) * 1000, (done - initialised) * 1000]))
"""

BARE = """
import time
started = time.perf_counter()
import json, os, sys
import boto3
client = boto3.client("dynamodb", endpoint_url=os.environ["DYNAMODB_ENDPOINT_URL"])
initialised = time.perf_counter()
item = client.get_item(TableName=os.environ["ENCOUNTER_TABLE"], Key=json.loads(sys.argv[1]))["Item"]
assert item["resource"]["S"]
done = time.perf_counter()
print(json.dumps([(initialised - started) * 1000, (done - initialised) * 1000]))
"""


def function_environment(endpoint: str, table: str, secret: str) -> dict[str, str]:
    """The read function's environment as template.yaml sets it, on DynamoDB Local."""
    return {
        "PATH": os.environ.get("PATH", ""),
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_SERVICE_NAME": "fhir-encounter",
        "POWERTOOLS_LOG_LEVEL": "INFO",
        "POWERTOOLS_METRICS_NAMESPACE": "FhirEncounterApi",
        "POWERTOOLS_LOGGER_LOG_EVENT": "false",
        "POWERTOOLS_METRICS_DISABLED": "false",
        "POWERTOOLS_TRACE_DISABLED": "false",
        "ENCOUNTER_TABLE": table,
        "CURSOR_SECRET": secret,
        "DYNAMODB_ENDPOINT_URL": endpoint,
        "AUTH_MODE": "iam",  # the template's default; required
    }


def _run(arguments: list[str], environment: dict[str, str]) -> tuple[float, float]:
    out = subprocess.run(
        [sys.executable, "-c", *arguments], cwd=ROOT, env=environment, capture_output=True, text=True
    )
    if out.returncode:
        raise RuntimeError(f"cold start run failed: {out.stderr.strip().splitlines()[-1:]}")
    init_ms, first_ms = json.loads(out.stdout.strip().splitlines()[-1])
    return float(init_ms), float(first_ms)


def cold_start_rows(
    endpoint: str, table: str, secret: str, event: dict[str, object], key: dict[str, object], runs: int = 7
) -> list[Row]:
    """Medians of ``runs`` interleaved pairs (after one unmeasured pair that writes bytecode caches):
    the first read after init (the target: the functions run with SnapStart, whose snapshot holds
    the init), init + first read and init alone (reported: a function without SnapStart)."""
    environment = function_environment(endpoint, table, secret)
    project_run = [PROJECT, str(READ_APP), json.dumps(event)]
    bare_run = [BARE, json.dumps(key)]
    _run(project_run, environment)
    _run(bare_run, environment)
    project: list[tuple[float, float]] = []
    bare: list[tuple[float, float]] = []
    pair = [(project, project_run), (bare, bare_run)]
    for n in range(runs):
        for samples, arguments in pair if n % 2 == 0 else pair[::-1]:
            samples.append(_run(arguments, environment))

    def median(samples: list[tuple[float, float]], init: int, first: int) -> float:
        return statistics.median(init * sample[0] + first * sample[1] for sample in samples)

    return [
        row(
            "cold: first read after init, ms (what a SnapStart restore leaves)",
            median(project, 0, 1),
            median(bare, 0, 1),
            TARGET,
        ),
        row("cold: init + first read, ms (no SnapStart)", median(project, 1, 1), median(bare, 1, 1)),
        row("cold: init (import, client), ms", median(project, 1, 0), median(bare, 1, 0)),
    ]
