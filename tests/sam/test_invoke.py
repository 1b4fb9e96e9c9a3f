"""Every events/*.json through the real Lambda runtime, with the outcome tests/invoke asserts in
process (``support.EVENT_OUTCOMES``), on a DynamoDB Local table holding ``INVOKE_ENCOUNTERS``.

All of them go through `sam local start-lambda` (warm containers, boto3's Lambda Invoke: what
`sam local invoke` does per event, without building an image each time); one event per function
also goes through the `sam local invoke` command itself (14-20 s each, as it rebuilds the image
with the layer on every call).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import pytest

from fhir_encounter_tools.samlocal.stack import SamLocal
from fhir_encounter_tools.template import api_routes, load_template
from tests.support import (
    EVENT_FILES,
    INVOKE_ALL_IN_ORDER,
    ROOT,
    assert_event_outcome,
    ids_of,
    load_event,
    relations,
    response_parts,
)

if TYPE_CHECKING:
    from mypy_boto3_lambda.client import LambdaClient

FUNCTION_OF = {
    (route.method, route.path): route.function
    for route in api_routes(load_template(ROOT / "template.yaml"), ROOT)
}
THROUGH_SAM_LOCAL_INVOKE = [
    "read_encounter_found",
    "search_encounters_paged",
    "capability_statement_metadata",
    "capability_statement_preflight_search",
]


def invoke_warm(client: LambdaClient, event: dict[str, Any]) -> dict[str, Any]:
    reply = client.invoke(
        FunctionName=FUNCTION_OF[event["httpMethod"], event["resource"]], Payload=json.dumps(event).encode()
    )
    assert "FunctionError" not in reply, reply.get("FunctionError")
    result: dict[str, Any] = json.loads(reply["Payload"].read())
    return result


@pytest.mark.parametrize("path", EVENT_FILES, ids=lambda path: path.stem)
def test_event_file_gives_its_expected_outcome_in_a_lambda_container(
    lambda_client: LambdaClient, path: Path
) -> None:
    assert_event_outcome(path.stem, *response_parts(invoke_warm(lambda_client, load_event(path))))


@pytest.mark.parametrize("name", THROUGH_SAM_LOCAL_INVOKE)
def test_sam_local_invoke_gives_the_expected_outcome(local: SamLocal, invoke_env: Path, name: str) -> None:
    event = ROOT / "events" / f"{name}.json"
    loaded = load_event(event)
    result = local.invoke(FUNCTION_OF[loaded["httpMethod"], loaded["resource"]], event, invoke_env)
    assert_event_outcome(name, *response_parts(result))


def test_following_next_links_from_the_paged_event_visits_every_encounter_once(
    lambda_client: LambdaClient,
) -> None:
    event = load_event(ROOT / "events" / "search_encounters_paged.json")
    url: str | None = relations(response_parts(invoke_warm(lambda_client, event))[2])["first"]
    seen: list[str] = []
    while url is not None:
        multi = parse_qs(urlsplit(url).query, keep_blank_values=True)
        paged = {
            **event,
            "multiValueQueryStringParameters": multi,
            "queryStringParameters": {name: values[-1] for name, values in multi.items()},
        }
        status, _, page = response_parts(invoke_warm(lambda_client, paged))
        assert status == 200
        seen.extend(ids_of(page))
        url = relations(page).get("next")
    assert seen == INVOKE_ALL_IN_ORDER
