"""GET /metadata (the CapabilityStatement) and GET /.well-known/smart-configuration: public,
no table access."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fhir_encounter.gateway import Request, Response
from fhir_encounter.routes import capability_statement, smart_configuration_document
from fhir_encounter.runtime import LambdaHandler, Runtime
from fhir_encounter.smart import SmartDiscovery

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


def create_handler(runtime: Runtime, smart: SmartDiscovery) -> LambdaHandler:
    router = runtime.router()

    @router.get("/metadata")
    def metadata(request: Request, _: LambdaContext) -> Response:
        return capability_statement(request, runtime, smart)

    @router.get("/.well-known/smart-configuration")
    def smart_configuration(request: Request, _: LambdaContext) -> Response:
        return smart_configuration_document(request, runtime, smart)

    return runtime.handler(router)


# Composition root: built once at init (the issuer's endpoints are read on first use, then kept).
runtime = Runtime.from_environment()
lambda_handler = create_handler(runtime, SmartDiscovery(runtime.settings))
