"""Fixtures and the test environment: a moto table built from template.yaml, a writer on it."""

from __future__ import annotations

import functools
import json
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any

from tests.environment import TEST_ENVIRONMENT

os.environ.update(TEST_ENVIRONMENT)
os.environ.pop("FHIR_BASE_URL", None)
os.environ.pop("DYNAMODB_ENDPOINT_URL", None)

import boto3
import pytest
from moto import mock_aws
from moto.dynamodb.models import DynamoDBBackend

from fhir_encounter.search.parameters import value_paths
from fhir_encounter.store.writer import EncounterWriter
from fhir_encounter_tools.template import load_template, table_definition
from tests.support import ROOT, TEST_TABLE, Writer, handlers_on

# DynamoDB applies each item write (an UpdateItem's condition and its changes) atomically; moto does
# not across threads, and the writer's threads (the loader's batches) widen the bucket directory's
# spans at once. The double keeps the service's guarantee: its item writes take one lock.
_ITEM_WRITES = threading.RLock()


def _atomic(write: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(write)
    def locked(*args: Any, **kwargs: Any) -> Any:
        with _ITEM_WRITES:
            return write(*args, **kwargs)

    return locked


for _name in ("update_item", "put_item", "delete_item"):
    setattr(DynamoDBBackend, _name, _atomic(getattr(DynamoDBBackend, _name)))


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
    writer = EncounterWriter(table, TEST_TABLE, value_paths())

    def write(*resources: dict[str, Any]) -> None:
        writer.write([json.loads(json.dumps(resource)) for resource in resources])

    return write
