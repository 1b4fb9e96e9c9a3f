"""GET /metadata: the server's CapabilityStatement (no table access)."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response

from fhir_encounter.routes import capability_statement
from fhir_encounter.runtime import LambdaHandler, Runtime


def create_handler(runtime: Runtime) -> LambdaHandler:
    app = runtime.resolver()

    @app.get("/metadata")
    @runtime.tracer.capture_method(capture_response=False)
    def metadata() -> Response[str]:
        return capability_statement(app.current_event, runtime)

    return runtime.handler(app)


# Composition root: built once at init.
lambda_handler = create_handler(Runtime.from_environment())
