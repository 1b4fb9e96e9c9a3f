"""Fault injection: the database goes away under a running API. Clients get 503 OperationOutcomes
with Retry-After (never a 500, a stack trace or AWS text), and the API recovers when it is back."""

from __future__ import annotations

from pathlib import Path

import pytest

from fhir_encounter.search.parameters import value_paths
from fhir_encounter.store.writer import EncounterWriter
from fhir_encounter_tools.devserver.dynamodb_local import dynamodb_local, free_port
from fhir_encounter_tools.tables import create_table, tools_client
from tests.support import Api, encounter, issue, start_server, stop_server

pytestmark = pytest.mark.integration

TABLE = "encounters-faults"


def test_a_vanished_database_is_a_503_and_the_api_recovers_when_it_returns(tmp_path: Path) -> None:
    port = free_port()
    with dynamodb_local(port) as endpoint:
        client = tools_client(endpoint)
        create_table(client, TABLE)
        EncounterWriter(client, TABLE, value_paths()).write(
            [encounter("f-1", subject="Patient/f", start="2022-01-01")]
        )
        server = start_server(tmp_path / "serve", "--endpoint-url", endpoint, "--table", TABLE)
    try:
        api = Api(server.base_url)
        # DynamoDB Local has stopped (its context closed): every data request fails over.
        for reply in (api.read("f-1"), api.search("patient=f"), api.search("")):
            assert reply.status == 503
            assert reply.headers["Retry-After"] == "2"
            found = issue(reply)
            assert found["code"] == "transient"
            assert "Traceback" not in reply.text
            assert "botocore" not in reply.text
            assert "127.0.0.1" not in reply.text
        assert api.request("/metadata").status == 200  # needs no table
        with dynamodb_local(port) as endpoint_again:  # back on the same port, but empty
            assert endpoint_again == endpoint
            reply = api.read("f-1")
            assert reply.status == 500  # the table is gone with the in-memory database
            assert issue(reply)["code"] == "exception"
            assert "ResourceNotFound" not in reply.text
            create_table(tools_client(endpoint), TABLE)
            EncounterWriter(tools_client(endpoint), TABLE, value_paths()).write(
                [encounter("f-1", subject="Patient/f", start="2022-01-01")]
            )
            assert api.read("f-1").status == 200
            assert api.search("patient=f").body["total"] == 1
    finally:
        stop_server(server.process)
