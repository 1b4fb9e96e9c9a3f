"""Composition: what a function builds once at init (its settings, Powertools objects, DynamoDB
client and repository) and hands down, so that they live in the SnapStart snapshot; and the
one error map from exceptions to OperationOutcome responses."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit

from fhir_encounter.access import PUBLIC, Access, Action, access_for, principal_of
from fhir_encounter.config import Settings
from fhir_encounter.errors import (
    CONTENT_TYPE,
    MAX_NAME_LENGTH,
    MAX_NAMED,
    FhirError,
    InternalError,
    NotFoundError,
    error_body,
)
from fhir_encounter.form_body import form_parameter_names
from fhir_encounter.gateway import COMMON_HEADERS, Request, Response, Router
from fhir_encounter.store.dynamodb import dynamodb_client
from fhir_encounter.store.repository import EncounterRepository

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext
    from mypy_boto3_dynamodb.client import DynamoDBClient

LambdaHandler = Callable[[dict[str, Any], "LambdaContext"], dict[str, Any]]
AUDIT_SUFFIX = "-audit"  # the audit logger's service name: fhir-encounter-audit
SEARCH_RESOURCES = ("/Encounter", "/Encounter/_search")


@dataclass(frozen=True, slots=True)
class Runtime:
    """Settings and the Powertools objects, configured from the settings (never from import-time
    environment reads). No Tracer when tracing is off: building one imports the X-Ray SDK (and
    patches modules with it), the largest import of a cold start."""

    settings: Settings
    logger: Logger
    tracer: Tracer | None
    metrics: Metrics
    audit_logger: Logger  # its own service name, always at INFO: a subscription can route it

    @classmethod
    def from_settings(cls, settings: Settings) -> Runtime:
        logger = Logger(service=settings.service_name, level=settings.log_level)
        # Powertools configures a service's logger once per process; the level must still apply
        # when a second Runtime is composed in it (the dev server, tests).
        logger.setLevel(settings.log_level)
        audit_logger = Logger(service=f"{settings.service_name}{AUDIT_SUFFIX}", level="INFO")
        audit_logger.setLevel("INFO")
        return cls(
            settings,
            logger,
            Tracer(service=settings.service_name) if settings.tracing else None,
            Metrics(service=settings.service_name, namespace=settings.metrics_namespace),
            audit_logger,
        )

    @classmethod
    def from_environment(cls) -> Runtime:
        return cls.from_settings(Settings.from_environment())

    def access(self, request: Request, action: Action) -> Access:
        """What the caller may see: InvalidTokenError when its token has expired (even though
        API Gateway's cached decision let it through), ForbiddenError when it does not allow
        ``action``."""
        return access_for(
            self.settings.auth_mode,
            request.context,
            action,
            now=time.time(),
            policy=self.settings.scope_policy,
            bases=(base_url(request, self), request_base_url(request)),
        )

    def audit(self, request: Request, status: int, access: Access | None, encounter_ids: list[str]) -> None:
        """The request's one audit line: who, which route and parameter names, the compartment
        applied ("all" when none, "denied" when the token allows nothing, "public" on the
        routes that need no token), the Encounters
        returned, the status. Never values other than ids. A POST search's parameters are those of
        its URL and its form body."""
        context = request.context
        if access is None:  # an error before or after the route knew it: work it out again
            action = Action.SEARCH if request.resource in SEARCH_RESOURCES else Action.READ
            try:
                access = self.access(request, action)
            except FhirError:
                access = None
        names = sorted(set(request.query) | form_parameter_names(request))
        if access is PUBLIC:
            compartment, access_label = "public", "anonymous"
        else:
            compartment = (access.compartment or "all") if access else "denied"
            access_label = "unknown"
        self.audit_logger.info(
            "access",
            extra={
                "principal": principal_of(self.settings.auth_mode, context) or access_label,
                "client_id": (access.client_id if access else None) or "",
                "route": f"{request.method} {request.resource}",
                "parameters": [name[:MAX_NAME_LENGTH] for name in names[:MAX_NAMED]],
                "parameter_count": len(names),
                "compartment": compartment,
                "encounter_ids": encounter_ids,
                "status": status,
                "request_id": str(context.get("requestId", "")),
            },
        )

    def count(self, name: str, value: float) -> None:
        if not self.settings.metrics_disabled:
            self.metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)

    def router(self) -> Router:
        """A router whose every error leaves as an OperationOutcome."""
        logger = self.logger

        def on_error(request: Request, error: Exception) -> Response:
            if isinstance(error, FhirError):
                self.audit(request, error.status, None, [])
                extra = {"status": error.status, "code": error.code}
                if error.status >= 500:
                    logger.warning("request failed", extra=extra, exc_info=error)
                else:
                    logger.info("request failed", extra=extra)
                return error_response(error)
            logger.exception("unexpected error", extra={"error_type": type(error).__name__})
            self.audit(request, InternalError.status, None, [])
            return error_response(InternalError())

        def on_no_route(request: Request) -> Response:
            self.audit(request, NotFoundError.status, None, [])
            return error_response(NotFoundError(f"No route for {request.method[:10]} {request.path[:200]}"))

        return Router(on_error, on_no_route, cors=self.settings.cors)

    def handler(self, router: Router) -> LambdaHandler:
        """The Lambda entry point for a router, with logging context, tracing and metrics.

        Routes are not wrapped in ``capture_method``: it logs every exception it sees at ERROR
        with a traceback, and a client's 4xx is not an error of the service.
        """
        handler: LambdaHandler = router.resolve
        if self.tracer is not None:
            handler = self.tracer.capture_lambda_handler(handler, capture_response=False)
        if not self.settings.metrics_disabled:
            handler = self.metrics.log_metrics(handler, capture_cold_start_metric=True)
        decorated: LambdaHandler = self.logger.inject_lambda_context(
            handler, correlation_id_path=correlation_paths.API_GATEWAY_REST
        )
        return decorated


@dataclass(frozen=True, slots=True)
class Store:
    """What a function that reads the table needs: the repository and the cursor key."""

    repository: EncounterRepository
    cursor_secret: str

    @classmethod
    def from_settings(cls, settings: Settings, client: DynamoDBClient | None = None) -> Store:
        table_name, cursor_secret = settings.store_settings()
        client = client or dynamodb_client(settings.dynamodb_endpoint_url)
        return cls(EncounterRepository(client, table_name), cursor_secret)


def base_url(request: Request, runtime: Runtime) -> str:
    """The FHIR base: FHIR_BASE_URL, else scheme and Host plus what precedes the resource path
    (the stage on an execute-api domain, a base path mapping on a custom domain, nothing locally)."""
    return runtime.settings.fhir_base_url or request_base_url(request)


def request_base_url(request: Request) -> str:
    """Scheme and Host of the request, plus what precedes the resource path."""
    headers = request.headers
    scheme = headers.get("X-Forwarded-Proto") or "https"
    host = headers.get("Host") or str(request.context.get("domainName") or "") or "localhost"
    return f"{scheme.split(',')[0].strip()}://{host}{request.base_path.rstrip('/')}"


def error_response(error: FhirError) -> Response:
    return fhir_response(error.status, error_body(error), error.headers())


def fhir_response(status: int, body: str | None, headers: dict[str, str] | None = None) -> Response:
    content_type = {"Content-Type": CONTENT_TYPE} if body is not None else {}
    return Response(status, body, {**content_type, **COMMON_HEADERS, **(headers or {})})
