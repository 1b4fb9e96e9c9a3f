"""GET /Encounter/{id}: FHIR read."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fhir_encounter.gateway import Request, Response
from fhir_encounter.read import read_encounter
from fhir_encounter.runtime import LambdaHandler, Runtime, Store

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


def create_handler(runtime: Runtime, store: Store) -> LambdaHandler:
    router = runtime.router()

    @router.get("/Encounter/{id}")
    def read(request: Request, _: LambdaContext) -> Response:
        return read_encounter(request, runtime, store)

    return runtime.handler(router)


# Composition root: built once at init, so SnapStart snapshots the client and its connections.
runtime = Runtime.from_environment()
lambda_handler = create_handler(runtime, Store.from_settings(runtime.settings))
