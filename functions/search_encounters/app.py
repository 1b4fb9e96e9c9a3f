"""GET /Encounter: FHIR search, answered with a searchset Bundle."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response

from fhir_encounter.routes import search_encounters
from fhir_encounter.runtime import LambdaHandler, Runtime, Store


def create_handler(runtime: Runtime, store: Store) -> LambdaHandler:
    app = runtime.resolver()

    @app.get("/Encounter")
    def search() -> Response[str]:
        context = app.lambda_context
        return search_encounters(
            app.current_event, runtime, store, context.get_remaining_time_in_millis() / 1000
        )

    return runtime.handler(app)


# Composition root: built once at init, so SnapStart snapshots the client and its connections.
runtime = Runtime.from_environment()
lambda_handler = create_handler(runtime, Store.from_settings(runtime.settings))
