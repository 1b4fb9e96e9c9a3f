"""Fixtures and the test environment: a moto table built from template.yaml, a writer on it."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

from tests.environment import TEST_ENVIRONMENT

os.environ.update(TEST_ENVIRONMENT)
os.environ.pop("FHIR_BASE_URL", None)
os.environ.pop("DYNAMODB_ENDPOINT_URL", None)

import boto3
import pytest
from moto import mock_aws

from fhir_encounter.store.writer import EncounterWriter
from fhir_encounter_tools.template import load_template, table_definition
from tests.support import ROOT, TEST_TABLE, Writer, handlers_on


@pytest.fixture
def table() -> Iterator[Any]:
    """The Encounter table under moto, from template.yaml's EncounterTable; the handlers use it."""
    with mock_aws():
        client = boto3.client("dynamodb")
        client.create_table(**table_definition(load_template(ROOT / "template.yaml"), TEST_TABLE))
        with handlers_on(client):
            yield client


@pytest.fixture
def put(table: Any) -> Writer:
    writer = EncounterWriter(table, TEST_TABLE)

    def write(*resources: dict[str, Any]) -> None:
        writer.write([json.loads(json.dumps(resource)) for resource in resources])

    return write
