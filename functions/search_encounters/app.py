"""GET /Encounter and POST /Encounter/_search: FHIR search, answered with a searchset Bundle."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fhir_encounter.gateway import Request, Response
from fhir_encounter.routes import search_encounters, search_encounters_by_post
from fhir_encounter.runtime import LambdaHandler, Runtime, Store

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


def create_handler(runtime: Runtime, store: Store) -> LambdaHandler:
    router = runtime.router()

    @router.get("/Encounter")
    def search(request: Request, context: LambdaContext) -> Response:
        return search_encounters(request, runtime, store, context.get_remaining_time_in_millis() / 1000)

    @router.post("/Encounter/_search")
    def search_by_post(request: Request, context: LambdaContext) -> Response:
        return search_encounters_by_post(
            request, runtime, store, context.get_remaining_time_in_millis() / 1000
        )

    return runtime.handler(router)


# Composition root: built once at init, so SnapStart snapshots the client and its connections.
runtime = Runtime.from_environment()
lambda_handler = create_handler(runtime, Store.from_settings(runtime.settings))
