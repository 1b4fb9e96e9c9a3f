"""template.yaml as the one source of truth for local tools: the table's schema and the API routes.

Only the CloudFormation tags need a loader of their own (``!Ref``, ``!Sub``, ...); they are kept
as ``{"Ref": ...}``-style dicts, which is all that the local tools read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

TABLE_RESOURCE = "EncounterTable"
TEMPLATE_NAME = "template.yaml"
_TABLE_KEYS = ("AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes")


class TemplateError(RuntimeError):
    """template.yaml is missing or lacks what a local tool needs."""


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str  # API Gateway form: /Encounter/{id}
    function: str  # logical id
    code_dir: Path
    handler: str  # module.function


class _CloudFormationLoader(yaml.SafeLoader):
    pass


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


_CloudFormationLoader.add_multi_constructor("!", _tag)


def find_template(start: Path | None = None) -> Path:
    """template.yaml beside this package's checkout, else in ``start`` (the current folder) or above it.

    The checkout comes first: run inside another SAM project, the tool still reads its own template.
    """
    here = start or Path.cwd()
    candidates = [*Path(__file__).resolve().parents, here, *here.parents]
    for folder in candidates:
        path = folder / TEMPLATE_NAME
        if path.is_file():
            return path
    raise TemplateError(f"{TEMPLATE_NAME} not found in this folder or above it")


def load_template(path: Path | None = None) -> dict[str, Any]:
    path = path or find_template()
    try:
        document = yaml.load(path.read_text(encoding="utf-8"), Loader=_CloudFormationLoader)  # noqa: S506
    except (OSError, yaml.YAMLError) as error:
        raise TemplateError(f"cannot read {path}: {type(error).__name__}") from None
    if not isinstance(document, dict) or "Resources" not in document:
        raise TemplateError(f"{path} is not a CloudFormation template")
    return document


def table_definition(template: dict[str, Any], table_name: str) -> dict[str, Any]:
    """CreateTable arguments for the Encounter table, from template.yaml's EncounterTable."""
    try:
        properties = template["Resources"][TABLE_RESOURCE]["Properties"]
        definition = {key: properties[key] for key in _TABLE_KEYS}
    except (KeyError, TypeError):
        raise TemplateError(f"template has no {TABLE_RESOURCE} with keys and indexes") from None
    return {"TableName": table_name, "BillingMode": "PAY_PER_REQUEST", **definition}


def api_routes(template: dict[str, Any], template_dir: Path) -> list[Route]:
    """Every Api event of every function: method, path and the handler that serves it."""
    globals_ = template.get("Globals", {}).get("Function", {})
    routes = []
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        properties = {**globals_, **resource.get("Properties", {})}
        for event in properties.get("Events", {}).values():
            if event.get("Type") != "Api":
                continue
            routes.append(
                Route(
                    method=str(event["Properties"]["Method"]).upper(),
                    path=str(event["Properties"]["Path"]),
                    function=logical_id,
                    code_dir=template_dir / str(properties["CodeUri"]),
                    handler=str(properties["Handler"]),
                )
            )
    if not routes:
        raise TemplateError("template has no Api routes")
    return routes
