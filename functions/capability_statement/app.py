"""GET /metadata (the CapabilityStatement) and GET /.well-known/smart-configuration: public,
no table access."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response

from fhir_encounter.routes import capability_statement, smart_configuration_document
from fhir_encounter.runtime import LambdaHandler, Runtime
from fhir_encounter.smart import SmartDiscovery


def create_handler(runtime: Runtime, smart: SmartDiscovery) -> LambdaHandler:
    app = runtime.resolver()

    @app.get("/metadata")
    def metadata() -> Response[str]:
        return capability_statement(app.current_event, runtime, smart)

    @app.get("/.well-known/smart-configuration")
    def smart_configuration() -> Response[str]:
        return smart_configuration_document(app.current_event, runtime, smart)

    return runtime.handler(app)


# Composition root: built once at init (the issuer's endpoints are read on first use, then kept).
runtime = Runtime.from_environment()
lambda_handler = create_handler(runtime, SmartDiscovery(runtime.settings))
