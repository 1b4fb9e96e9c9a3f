"""The Encounter table for the operator tools, created from template.yaml's EncounterTable so that a
local table and a deployed one cannot differ; an existing table must have the keys and indexes
the code queries."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from fhir_encounter.store import keys
from fhir_encounter.store.dynamodb import LOAD_CONFIG, dynamodb_client
from fhir_encounter_tools.template import load_template, table_definition

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

KeySchema = tuple[str, ...]  # attribute names, HASH then RANGE


class TableSchemaError(RuntimeError):
    """The table exists but lacks the keys or indexes the code queries."""


def tools_client(endpoint_url: str | None) -> DynamoDBClient:
    """The runtime's client factory with a load's patience (longer timeouts, adaptive retries)."""
    return dynamodb_client(endpoint_url, LOAD_CONFIG)


def create_table(client: DynamoDBClient, table_name: str, template_path: Path | None = None) -> bool:
    """Create the table from template.yaml and wait until it is ACTIVE; False if it existed.

    Raises TemplateError when template.yaml is missing, TableSchemaError when an existing table
    lacks the template's keys or indexes.
    """
    definition = table_definition(load_template(template_path), table_name)
    try:
        client.create_table(**definition)
        created = True
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "ResourceInUseException":
            raise
        created = False
    # An on-demand table with three indexes takes seconds in AWS, no time in DynamoDB Local.
    client.get_waiter("table_exists").wait(
        TableName=table_name, WaiterConfig={"Delay": 2, "MaxAttempts": 150}
    )
    if not created:
        expected = {
            index["IndexName"]: _key_names(index["KeySchema"])
            for index in definition["GlobalSecondaryIndexes"]
        }
        _check_schema(client, table_name, _key_names(definition["KeySchema"]), expected)
    return created


def require_table(client: DynamoDBClient, table_name: str) -> None:
    """Check that the table exists with the keys and indexes of ``store.keys``.

    Raises ClientError (ResourceNotFoundException) when it does not exist, TableSchemaError when
    it lacks a key or an index.
    """
    _check_schema(client, table_name, (keys.PARTITION_KEY, keys.SORT_KEY), keys.INDEXES)


def _check_schema(
    client: DynamoDBClient,
    table_name: str,
    keys: KeySchema,
    indexes: Mapping[str, KeySchema],
) -> None:
    table = client.describe_table(TableName=table_name)["Table"]
    if _key_names(table.get("KeySchema", [])) != keys:
        raise TableSchemaError(
            f"table '{table_name}' exists with another key schema than ({', '.join(keys)})"
        )
    found = {
        index["IndexName"]: _key_names(index["KeySchema"])
        for index in table.get("GlobalSecondaryIndexes", [])
    }
    wrong = sorted(name for name, index_keys in indexes.items() if found.get(name) != index_keys)
    if wrong:
        raise TableSchemaError(
            f"table '{table_name}' exists without the indexes {', '.join(wrong)} that template.yaml defines; "
            "delete it or use another --table"
        )


def _key_names(key_schema: Sequence[Mapping[str, Any]]) -> KeySchema:
    order = {"HASH": 0, "RANGE": 1}
    return tuple(key["AttributeName"] for key in sorted(key_schema, key=lambda key: order[key["KeyType"]]))
