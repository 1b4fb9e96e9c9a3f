"""create-table from template.yaml and the table check before loading, on moto."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from fhir_encounter.store import keys
from fhir_encounter_tools.tables import TableSchemaError, create_table, require_table
from fhir_encounter_tools.template import TemplateError
from tests.support import ROOT, TEST_TABLE

TEMPLATE = ROOT / "template.yaml"


@pytest.fixture
def client() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("dynamodb")


def index_keys(client: Any, name: str) -> dict[str, tuple[str, ...]]:
    table = client.describe_table(TableName=name)["Table"]
    return {
        index["IndexName"]: tuple(key["AttributeName"] for key in index["KeySchema"])
        for index in table["GlobalSecondaryIndexes"]
    }


def test_create_table_makes_the_template_table_active_with_its_indexes(client: Any) -> None:
    assert create_table(client, "fresh", TEMPLATE) is True
    table = client.describe_table(TableName="fresh")["Table"]
    assert table["TableStatus"] == "ACTIVE"
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert index_keys(client, "fresh") == keys.INDEXES
    require_table(client, "fresh")


def test_create_table_is_idempotent(client: Any) -> None:
    assert create_table(client, "twice", TEMPLATE) is True
    assert create_table(client, "twice", TEMPLATE) is False
    assert client.list_tables()["TableNames"] == ["twice"]


def test_create_table_finds_the_template_by_itself(client: Any) -> None:
    assert create_table(client, "found") is True
    assert index_keys(client, "found") == keys.INDEXES


def without_index(client: Any, name: str) -> None:
    client.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
    )


def test_an_existing_table_without_the_indexes_is_refused_by_name(client: Any) -> None:
    without_index(client, "bare")
    with pytest.raises(TableSchemaError) as raised:
        create_table(client, "bare", TEMPLATE)
    assert str(raised.value) == (
        "table 'bare' exists without the indexes appointment-index, period-start-index, subject-index, "
        "value-index "
        "that template.yaml defines; delete it or use another --table"
    )
    with pytest.raises(TableSchemaError):
        require_table(client, "bare")


def test_an_existing_table_with_other_keys_is_refused(client: Any) -> None:
    client.create_table(
        TableName="other",
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
    )
    with pytest.raises(TableSchemaError, match="another key schema"):
        require_table(client, "other")


def test_require_table_raises_not_found_for_a_missing_table(client: Any) -> None:
    with pytest.raises(ClientError) as raised:
        require_table(client, TEST_TABLE)
    assert raised.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_a_missing_template_is_a_template_error(client: Any, tmp_path: Path) -> None:
    with pytest.raises(TemplateError):
        create_table(client, "t", tmp_path / "template.yaml")
    assert client.list_tables()["TableNames"] == []
