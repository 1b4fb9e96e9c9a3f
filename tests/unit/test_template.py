"""template.yaml is the one source of truth: the code's names and versions must agree with it."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest

from fhir_encounter.config import ENVIRONMENT
from fhir_encounter_tools.template import api_routes, load_template
from fhir_encounter.search.parameters import RESULT_PARAMETERS, SEARCH_PARAMETERS
from fhir_encounter.store import keys as schema
from fhir_encounter.store.items import projections

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = load_template(ROOT / "template.yaml")
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def table_properties() -> dict[str, Any]:
    properties: dict[str, Any] = TEMPLATE["Resources"]["EncounterTable"]["Properties"]
    return properties


def test_indexes_in_code_equal_the_template() -> None:
    indexes = {
        index["IndexName"]: tuple(key["AttributeName"] for key in index["KeySchema"])
        for index in table_properties()["GlobalSecondaryIndexes"]
    }
    assert indexes == schema.INDEXES


@pytest.mark.parametrize("index", table_properties()["GlobalSecondaryIndexes"], ids=lambda i: i["IndexName"])
def test_every_index_projects_what_a_match_needs_and_no_resource(index: dict[str, Any]) -> None:
    projection = index["Projection"]
    assert projection["ProjectionType"] == "INCLUDE"
    keys = {key["AttributeName"] for key in index["KeySchema"]}
    assert set(projections()[index["IndexName"]]) == set(projection["NonKeyAttributes"]) - keys
    assert schema.ATTR_RESOURCE not in projection["NonKeyAttributes"]


def test_table_keys_equal_the_code() -> None:
    keys = [key["AttributeName"] for key in table_properties()["KeySchema"]]
    assert keys == [schema.PARTITION_KEY, schema.SORT_KEY]


def test_table_is_protected_encrypted_and_on_demand() -> None:
    properties = table_properties()
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert properties["SSESpecification"] == {"SSEEnabled": True}
    assert properties["DeletionProtectionEnabled"] == {"Ref": "TableDeletionProtection"}


def test_functions_may_only_read_and_never_scan() -> None:
    functions = [k for k, v in TEMPLATE["Resources"].items() if v["Type"] == "AWS::Serverless::Function"]
    assert "Policies" not in TEMPLATE["Resources"]["CapabilityStatementFunction"]["Properties"]
    for name in ("ReadEncounterFunction", "SearchEncountersFunction"):
        assert name in functions
        policies = TEMPLATE["Resources"][name]["Properties"]["Policies"]
        actions = {action for policy in policies for st in policy["Statement"] for action in st["Action"]}
        assert actions <= {"dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query"}, name


def test_one_python_version_everywhere() -> None:
    assert TEMPLATE["Globals"]["Function"]["Runtime"] == "python3.13"
    assert TEMPLATE["Resources"]["EncounterLayer"]["Metadata"]["BuildMethod"] == "python3.13"
    assert PYPROJECT["project"]["requires-python"] == ">=3.13,<3.14"
    assert PYPROJECT["tool"]["ruff"]["target-version"] == "py313"
    assert PYPROJECT["tool"]["mypy"]["python_version"] == "3.13"


def test_layer_installs_the_project_runtime_dependencies() -> None:
    layer = TEMPLATE["Resources"]["EncounterLayer"]["Properties"]["ContentUri"]
    requirements = (ROOT / layer / "requirements.txt").read_text().split()
    assert sorted(requirements) == sorted(PYPROJECT["project"]["dependencies"])
    assert (ROOT / layer / "fhir_encounter" / "__init__.py").is_file()


def test_every_route_has_its_handler_and_an_event_file() -> None:
    routes = api_routes(TEMPLATE, ROOT)
    assert {(r.method, r.path) for r in routes} == {
        ("GET", "/Encounter/{id}"),
        ("GET", "/Encounter"),
        ("GET", "/metadata"),
    }
    for route in routes:
        module, function = route.handler.split(".")
        source = (route.code_dir / f"{module}.py").read_text()
        assert f"\n{function} = create_handler(" in source
    resources = {json.loads(path.read_text())["resource"] for path in (ROOT / "events").glob("*.json")}
    assert resources == {route.path for route in routes}


def test_the_api_is_never_anonymous() -> None:
    auth = TEMPLATE["Resources"]["EncounterApi"]["Properties"]["Auth"]
    assert auth == {"DefaultAuthorizer": "AWS_IAM", "InvokeRole": "NONE"}


def test_api_gateway_own_errors_are_operation_outcomes() -> None:
    responses = TEMPLATE["Resources"]["EncounterApi"]["Properties"]["GatewayResponses"]
    assert {"MISSING_AUTHENTICATION_TOKEN", "THROTTLED", "DEFAULT_4XX", "DEFAULT_5XX"} <= set(responses)
    for name, response in responses.items():
        body = response["ResponseTemplates"]["application/json"].replace(
            "$context.error.messageString", '"m"'
        )
        outcome = json.loads(body)
        assert outcome["resourceType"] == "OperationOutcome", name
        assert outcome["issue"][0]["severity"] == "error", name
        assert response["ResponseParameters"]["Headers"]["Content-Type"] == "'application/fhir+json'", name


def test_every_setting_is_declared_so_sam_local_env_vars_can_set_it() -> None:
    declared = set(TEMPLATE["Globals"]["Function"]["Environment"]["Variables"])
    assert set(ENVIRONMENT.values()) <= declared


def test_the_readme_table_is_the_registry() -> None:
    """The README's search-parameter table has one row per registry entry, in its order and words."""
    readme = (ROOT / "README.md").read_text()
    rows = [line for line in readme.splitlines() if line.startswith("| `") and line.count(" | ") == 3]
    expected = [
        f"| `{p.name}` | {p.type.value} | {p.accepts} | {p.documentation} |"
        for p in SEARCH_PARAMETERS.values()
    ] + [
        f"| `{p.name}` | {p.type.value} | {p.accepts} | {p.documentation} |"
        for p in RESULT_PARAMETERS.values()
    ]
    assert rows == expected


def test_every_route_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    for route in api_routes(TEMPLATE, ROOT):
        assert f"`{route.method} {route.path}" in readme, route.path
