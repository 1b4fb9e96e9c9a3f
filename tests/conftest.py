"""Shared fixtures: a moto table built from template.yaml, a writer, and handler invocation."""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

TEST_TABLE = "encounters-test"
TEST_SECRET = "test-cursor-secret-0123456789abcdef"
# Set before the package is imported: Powertools reads its environment when the Logger is made.
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "ENCOUNTER_TABLE": TEST_TABLE,
        "CURSOR_SECRET": TEST_SECRET,
        "POWERTOOLS_SERVICE_NAME": "fhir-encounter",
        "POWERTOOLS_METRICS_NAMESPACE": "FhirEncounterApi",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }
)
os.environ.pop("FHIR_BASE_URL", None)
os.environ.pop("DYNAMODB_ENDPOINT_URL", None)

import boto3
import pytest
from moto import mock_aws

from fhir_encounter import api, config
from fhir_encounter.local.events import LocalContext, rest_api_event
from fhir_encounter.local.template import load_template, table_definition
from fhir_encounter.local.writer import EncounterWriter
from fhir_encounter.store import repository

ROOT = Path(__file__).resolve().parents[1]


def clear_caches() -> None:
    config.get_settings.cache_clear()
    repository.dynamodb_client.cache_clear()
    api.encounter_repository.cache_clear()


@pytest.fixture
def table() -> Iterator[Any]:
    """The Encounter table, created under moto from template.yaml's EncounterTable."""
    clear_caches()
    with mock_aws():
        client = boto3.client("dynamodb")
        client.create_table(**table_definition(load_template(ROOT / "template.yaml"), TEST_TABLE))
        yield client
    clear_caches()


@pytest.fixture
def put(table: Any) -> Callable[..., None]:
    writer = EncounterWriter(table, TEST_TABLE)

    def write(*resources: dict[str, Any]) -> None:
        writer.write([json.loads(json.dumps(resource)) for resource in resources])

    return write


def encounter(
    encounter_id: str,
    *,
    subject: str | None = "Patient/p1",
    start: str | None = None,
    end: str | None = None,
    appointments: Sequence[str] = (),
    status: str = "finished",
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Encounter",
        "id": encounter_id,
        "status": status,
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
    }
    if subject:
        resource["subject"] = {"reference": subject}
    if start or end:
        resource["period"] = {k: v for k, v in (("start", start), ("end", end)) if v}
    if appointments:
        resource["appointment"] = [{"reference": ref} for ref in appointments]
    return resource


def load_handler(function: str) -> ModuleType:
    """functions/<function>/app.py, imported from its file as Lambda would run it."""
    path = ROOT / "functions" / function / "app.py"
    spec = importlib.util.spec_from_file_location(f"{function}_app", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


READ = load_handler("read_encounter")
SEARCH = load_handler("search_encounters")
CAPABILITY = load_handler("capability_statement")
HANDLERS = {"/Encounter/{id}": READ, "/Encounter": SEARCH, "/metadata": CAPABILITY}


def invoke(event: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
    """Pass an event to the handler that owns its resource; (status, headers, parsed body)."""
    response = HANDLERS[event["resource"]].lambda_handler(event, LocalContext())
    body = json.loads(response["body"]) if response.get("body") else None
    headers = {
        **response.get("headers", {}),
        **{k: v[0] for k, v in response.get("multiValueHeaders", {}).items()},
    }
    return response["statusCode"], headers, body


def search(query: str | Mapping[str, Sequence[str]] = "", headers: Mapping[str, str] | None = None) -> Any:
    """Invoke search with a query string (``a=1&a=2``) or a multi-value dict; returns the response."""
    if isinstance(query, str):
        from urllib.parse import parse_qs

        query = parse_qs(query, keep_blank_values=True)
    return invoke(
        rest_api_event(method="GET", path="/Encounter", resource="/Encounter", query=query, headers=headers)
    )


def read(encounter_id: str, headers: Mapping[str, str] | None = None) -> Any:
    return invoke(
        rest_api_event(
            method="GET",
            path=f"/Encounter/{encounter_id}",
            resource="/Encounter/{id}",
            path_parameters={"id": encounter_id},
            headers=headers,
        )
    )


def ids_of(bundle: dict[str, Any]) -> list[str]:
    return [entry["resource"]["id"] for entry in bundle.get("entry", [])]
