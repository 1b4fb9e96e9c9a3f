"""GET /Encounter: FHIR search, answered with a searchset Bundle."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from fhir_encounter.api import create_resolver, search_encounters
from fhir_encounter.observability import logger, metrics, tracer

app = create_resolver()


@app.get("/Encounter")
@tracer.capture_method(capture_response=False)
def search() -> Response[str]:
    return search_encounters(app.current_event)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
