"""GET /metadata: the server's CapabilityStatement (no table access)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from fhir_encounter.api import capability_statement, create_resolver
from fhir_encounter.observability import logger, tracer

app = create_resolver()


@app.get("/metadata")
@tracer.capture_method(capture_response=False)
def metadata() -> Response[str]:
    return capability_statement(app.current_event)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
