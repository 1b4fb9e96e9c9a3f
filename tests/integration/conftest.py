"""DynamoDB Local and the local API server, for the integration suite (fixtures only; the helpers
are in tests.support).

Session fixtures: DynamoDB Local on a free 127.0.0.1 port (stopped by its pid), the table created
from template.yaml, the search scenarios (``SCENARIOS``) written with the writer, tests/data
loaded with ``fhir-encounter load``, and ``fhir-encounter serve`` against that table as a
subprocess (stopped by its pid with SIGTERM). Everything talks to 127.0.0.1 only.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from fhir_encounter.search.parameters import value_paths
from fhir_encounter.store.writer import EncounterWriter
from fhir_encounter_tools.devserver.dynamodb_local import dynamodb_local
from fhir_encounter_tools.tables import create_table, tools_client
from tests.support import (
    INTEGRATION_DATA,
    INTEGRATION_TABLE,
    ROOT,
    SCENARIOS,
    Api,
    CliRun,
    Server,
    run_cli,
    start_server,
    stop_server,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient


@pytest.fixture(scope="session")
def dynamodb_endpoint() -> Iterator[str]:
    with dynamodb_local() as endpoint_url:
        yield endpoint_url


@pytest.fixture(scope="session")
def dynamodb(dynamodb_endpoint: str) -> DynamoDBClient:
    return tools_client(dynamodb_endpoint)


@pytest.fixture(scope="session")
def first_load(dynamodb: DynamoDBClient, dynamodb_endpoint: str) -> CliRun:
    """The table from template.yaml, the scenarios, then ``fhir-encounter load tests/data``."""
    create_table(dynamodb, INTEGRATION_TABLE, ROOT / "template.yaml")
    EncounterWriter(dynamodb, INTEGRATION_TABLE, value_paths()).write(json.loads(json.dumps(SCENARIOS)))
    return run_cli(
        "load", "--endpoint-url", dynamodb_endpoint, "--table", INTEGRATION_TABLE, str(INTEGRATION_DATA)
    )


@pytest.fixture(scope="session")
def server(
    first_load: CliRun, dynamodb_endpoint: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """One ``fhir-encounter serve`` for the session, at its default log level (WARNING)."""
    running = start_server(
        tmp_path_factory.mktemp("serve"), "--endpoint-url", dynamodb_endpoint, "--table", INTEGRATION_TABLE
    )
    try:
        yield running
    finally:
        stop_server(running.process)


@pytest.fixture(scope="session")
def api(server: Server) -> Api:
    return Api(server.base_url)
