"""`sam local` for real (fixtures only; the helpers are in tests.support and the tool itself).

One session: Docker and the runtime image, `sam build` for this machine's architecture, DynamoDB
Local on the Docker bridge with two tables (the seeded ``encounters`` that `make sam-local` serves,
and ``encounters-invoke`` with the event files' data), `sam local start-api` on the first,
`sam local start-lambda` on the second, and `fhir-encounter serve` on the first for the parity
test. Everything is stopped by its pid at the end. Without Docker it is skipped with the reason,
except under CI=true, where that is a failure.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
import pytest
from botocore.config import Config

from fhir_encounter.search.parameters import value_paths
from fhir_encounter.store.writer import EncounterWriter
from fhir_encounter_tools.devserver.dynamodb_local import free_port
from fhir_encounter_tools.samlocal.docker import unavailable_reason
from fhir_encounter_tools.samlocal.stack import LOCAL_TABLE, SamLocal, sam_local
from fhir_encounter_tools.tables import create_table, tools_client
from tests.support import INVOKE_ENCOUNTERS, PARITY_CORS_ORIGIN, ROOT, Api, start_server, stop_server

if TYPE_CHECKING:
    from mypy_boto3_lambda.client import LambdaClient

INVOKE_TABLE = "encounters-invoke"
SAM = os.environ.get("SAM_CLI") or str(ROOT / ".venv-sam" / "bin" / "sam")


def _say(line: str) -> None:
    print(f"[sam-local] {line}", file=sys.stderr, flush=True)


@pytest.fixture(scope="session")
def sam_cli() -> str:
    return SAM


@pytest.fixture(scope="session")
def local() -> Iterator[SamLocal]:
    reason = unavailable_reason()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"test-sam must run under CI=true: {reason}")
        pytest.skip(reason)
    with sam_local(SAM, _say) as prepared:
        client = tools_client(prepared.dynamodb_endpoint)
        create_table(client, INVOKE_TABLE, ROOT / "template.yaml")
        EncounterWriter(client, INVOKE_TABLE, value_paths()).write(json.loads(json.dumps(INVOKE_ENCOUNTERS)))
        yield prepared


@pytest.fixture(scope="session")
def work_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sam")


@pytest.fixture(scope="session")
def invoke_env(local: SamLocal, work_dir: Path) -> Path:
    """The functions' env.json for the event files' table (links follow each event's Host)."""
    return local.write_env_file(work_dir / "env-invoke.json", INVOKE_TABLE)


@pytest.fixture(scope="session")
def api(local: SamLocal, work_dir: Path) -> Iterator[Api]:
    """`sam local start-api` (warm containers) on the seeded table, as `make sam-local` runs it."""
    env_file = local.write_env_file(work_dir / "env.json", LOCAL_TABLE, cors_origins=PARITY_CORS_ORIGIN)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    with local.start_api(env_file, port, work_dir / "start-api.log", fhir_base_url=base_url):
        yield Api(base_url)


@pytest.fixture(scope="session")
def lambda_client(local: SamLocal, invoke_env: Path, work_dir: Path) -> Iterator[LambdaClient]:
    """boto3's Lambda client on `sam local start-lambda` (warm containers) for the event files."""
    with local.start_lambda(invoke_env, free_port(), work_dir / "start-lambda.log") as endpoint:
        yield boto3.client(
            "lambda",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
            config=Config(read_timeout=120, retries={"total_max_attempts": 1}),
        )


@pytest.fixture(scope="session")
def served(local: SamLocal, work_dir: Path) -> Iterator[Api]:
    """`fhir-encounter serve` (`make run`) on the same DynamoDB Local table as start-api."""
    server = start_server(
        work_dir / "serve",
        "--endpoint-url", local.dynamodb_endpoint, "--table", LOCAL_TABLE,
        "--cors-origin", PARITY_CORS_ORIGIN,
    )  # fmt: skip
    try:
        yield Api(server.base_url)
    finally:
        stop_server(server.process)
