"""GET /Encounter/{id}: FHIR read."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response

from fhir_encounter.read import read_encounter
from fhir_encounter.runtime import LambdaHandler, Runtime, Store


def create_handler(runtime: Runtime, store: Store) -> LambdaHandler:
    app = runtime.resolver()

    @app.get("/Encounter/<encounter_id>")
    def read(encounter_id: str) -> Response[str]:
        # API Gateway decodes pathParameters (enc%2D1 is enc-1); the path the route matched may not be.
        decoded = (app.current_event.path_parameters or {}).get("id") or encounter_id
        return read_encounter(app.current_event, decoded, runtime, store)

    return runtime.handler(app)


# Composition root: built once at init, so SnapStart snapshots the client and its connections.
runtime = Runtime.from_environment()
lambda_handler = create_handler(runtime, Store.from_settings(runtime.settings))
