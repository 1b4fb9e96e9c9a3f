"""API Gateway's Lambda authorizer step for ``serve --auth smart``: the real authorizer runs
in-process before each non-public route, and its answer is read as API Gateway reads it (401
for no token or a Deny, 503 for a failure, the Allow's context in ``requestContext.authorizer``)."""

from __future__ import annotations

import copy
import fnmatch
import json
import shlex
import sys
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from fhir_encounter.access import AuthMode
from fhir_encounter.errors import FhirError, RetryLaterError
from fhir_encounter.store.dynamodb import LOCAL_REGION
from fhir_encounter_tools.devserver.events import LocalContext
from fhir_encounter_tools.devserver.issuer import DEFAULT_KEY_FILE, DEV_AUDIENCE, DEV_ISSUER, DevIssuer
from fhir_encounter_tools.ingest.seed import SEED_PATIENT
from fhir_encounter_tools.reporting import PROGRAM

AUTHORIZER_FUNCTION = "SmartAuthorizerFunction"  # its logical id in template.yaml
AUTHORIZER_CODE_DIR = "functions/authorizer"  # beside template.yaml
AUTHORIZER_HANDLER = "app.lambda_handler"
JWKS_PATH = "/.well-known/jwks.json"
# The dev issuer mints tokens on the command line only; its OAuth endpoints say so (400).
AUTHORIZE_PATH, TOKEN_PATH = "/dev-issuer/authorize", "/dev-issuer/token"
PUBLIC_PATHS = frozenset(
    {"/metadata", "/.well-known/smart-configuration", JWKS_PATH, AUTHORIZE_PATH, TOKEN_PATH}
)
UNAUTHORIZED = "Unauthorized"  # the exception text that API Gateway answers 401 for
INVOKE_ACTIONS = ("execute-api:Invoke", "execute-api:*", "*")
TRY_SCOPE = "patient/Encounter.rs"  # the scope of the startup hint's token

Handler = Callable[[dict[str, Any], Any], Any]


class UnauthorizedError(FhirError):
    """No usable bearer token (401): ``invalid_token`` when one was sent and refused."""

    status = 401
    code = "login"

    def __init__(self, text: str, *, invalid_token: bool) -> None:
        super().__init__(text)
        self.invalid_token = invalid_token

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Bearer error="invalid_token"' if self.invalid_token else "Bearer"}


class AuthorizerFailedError(RetryLaterError):
    """The authorizer failed or answered something unusable (the template answers 503)."""


class LocalAuthorizer:
    """The authorizer function's handler, called one event at a time as Lambda would."""

    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self._invocations = threading.Lock()

    @classmethod
    def for_dev_issuer(
        cls, app: ModuleType, issuer: DevIssuer, environment: Mapping[str, str]
    ) -> LocalAuthorizer:
        """The authorizer module's ``create_handler`` with a verifier configured from
        ``environment`` whose JWKS is ``issuer``'s (handed over in-process, not fetched)."""
        verifier = app.TokenVerifier.from_environment(environment, fetch=lambda url: issuer.jwks())
        return cls(app.create_handler(verifier))

    def refusal(self, route_path: str, event: dict[str, Any]) -> FhirError | None:
        """None when API Gateway would pass ``event`` on to the function (then with the
        authorizer's context in it); else the error it answers."""
        if route_path in PUBLIC_PATHS or event.get("httpMethod") == "OPTIONS":  # preflights: no token
            return None
        arn = method_arn(event)
        request = {
            **copy.deepcopy({name: event.get(name) for name in _REQUEST_FIELDS}),
            "type": "REQUEST",
            "methodArn": arn,
        }
        try:
            with self._invocations:
                result = self._handler(request, LocalContext(function_name=AUTHORIZER_FUNCTION))
        except Exception as error:
            if str(error) == UNAUTHORIZED and type(error) is Exception:
                return UnauthorizedError(
                    "A bearer token is required (Authorization: Bearer)", invalid_token=False
                )
            _log(f"{AUTHORIZER_FUNCTION} raised {type(error).__name__}")
            return AuthorizerFailedError("The token could not be checked; retry later")
        decision = _decision(result, arn)
        if decision is None:
            _log(f"{AUTHORIZER_FUNCTION} returned a malformed answer")
            return AuthorizerFailedError("The token could not be checked; retry later")
        if not decision:
            return UnauthorizedError("The bearer token is not valid for this API", invalid_token=True)
        context = {name: _text(value) for name, value in (result.get("context") or {}).items()}
        event["requestContext"]["authorizer"] = {**context, "principalId": str(result["principalId"])}
        return None


_REQUEST_FIELDS = (
    "resource",
    "path",
    "httpMethod",
    "headers",
    "multiValueHeaders",
    "queryStringParameters",
    "multiValueQueryStringParameters",
    "pathParameters",
    "stageVariables",
    "requestContext",
)


def method_arn(event: Mapping[str, Any]) -> str:
    """``arn:aws:execute-api:{region}:{account}:{api}/{stage}/{METHOD}{path}`` for a proxy event."""
    context = event["requestContext"]
    return (
        f"arn:aws:execute-api:{LOCAL_REGION}:{context['accountId']}:{context['apiId']}/"
        f"{context['stage']}/{event['httpMethod']}{event['path']}"
    )


def _decision(result: Any, arn: str) -> bool | None:
    """Whether the policy allows invoking ``arn`` (an explicit Deny wins); None when API Gateway
    could not use the answer (no principal, no policy, a context value that is not a scalar)."""
    try:
        statements = result["policyDocument"]["Statement"]
        statements = [statements] if isinstance(statements, dict) else list(statements)
        principal, context = result["principalId"], result.get("context") or {}
        if not isinstance(principal, str) or not isinstance(context, dict):
            return None
        if not all(isinstance(value, str | int | float | bool) for value in context.values()):
            return None
        effects = {str(statement["Effect"]) for statement in statements if _covers(statement, arn)}
    except (KeyError, TypeError):
        return None
    return "Allow" in effects and "Deny" not in effects


def _covers(statement: Mapping[str, Any], arn: str) -> bool:
    actions, resources = statement.get("Action", []), statement.get("Resource", [])
    actions = [actions] if isinstance(actions, str) else actions
    resources = [resources] if isinstance(resources, str) else resources
    return any(action in INVOKE_ACTIONS for action in actions) and any(
        fnmatch.fnmatchcase(arn, str(resource)) for resource in resources
    )


def _text(value: Any) -> str:
    """A context value as the function sees it (API Gateway passes them on as strings)."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def authorizer_environment(port: int) -> dict[str, str]:
    """The authorizer's environment for the dev issuer (its JWKS is where serve publishes it)."""
    return {
        "OIDC_ISSUER": DEV_ISSUER,
        "OIDC_AUDIENCE": DEV_AUDIENCE,
        "JWKS_URL": f"http://127.0.0.1:{port}{JWKS_PATH}",
    }


def function_auth_environment(mode: AuthMode, base_url: str) -> dict[str, str]:
    """What the functions need to know about authorization in ``mode`` (none or smart)."""
    if mode is not AuthMode.SMART:
        return {"AUTH_MODE": mode.value}
    return {
        "AUTH_MODE": mode.value,
        "OIDC_ISSUER": DEV_ISSUER,
        "SMART_AUTHORIZATION_ENDPOINT": f"{base_url}{AUTHORIZE_PATH}",
        "SMART_TOKEN_ENDPOINT": f"{base_url}{TOKEN_PATH}",
        "JWKS_URL": f"{base_url}{JWKS_PATH}",
    }


def dev_issuer_routes(issuer: DevIssuer) -> list[tuple[str, str, Handler]]:
    """(method, path, stand-in function) of the dev issuer: its JWKS, and OAuth endpoints that
    answer 400 with how to get a token instead (the SMART configuration lists them)."""
    how = (
        f"The dev issuer has no OAuth flow: mint a token with "
        f"`{PROGRAM} token --dev-issuer-key PATH --scope SCOPES`"
    )
    return [
        ("GET", JWKS_PATH, _json_handler(200, issuer.jwks())),
        (
            "GET",
            AUTHORIZE_PATH,
            _json_handler(400, {"error": "unsupported_response_type", "error_description": how}),
        ),
        (
            "POST",
            TOKEN_PATH,
            _json_handler(400, {"error": "unsupported_grant_type", "error_description": how}),
        ),
    ]


def _json_handler(status: int, document: dict[str, Any]) -> Handler:
    body = json.dumps(document)

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        headers = {"Content-Type": "application/json", "Cache-Control": "no-store"}
        return {"statusCode": status, "headers": headers, "body": body, "isBase64Encoded": False}

    return handler


def startup_lines(
    mode: AuthMode, *, program: str, base_url: str, key_file: Path | None, serve_options: str = ""
) -> list[str]:
    """What serve says about authorization when it starts, with a curl line that mints a token."""
    key = shlex.quote(str(key_file or DEFAULT_KEY_FILE))
    token = f"$({program} token --dev-issuer-key {key} --patient {SEED_PATIENT} --scope '{TRY_SCOPE}')"
    curl = f"curl -H \"Authorization: Bearer {token}\" '{base_url}/Encounter'"
    if mode is AuthMode.SMART:
        return [
            f"Authorization: SMART bearer tokens (--auth smart) signed by the dev issuer key {key}; "
            f"JWKS on {base_url}{JWKS_PATH}; /metadata and /.well-known/smart-configuration are public",
            f"Try SMART: {curl}",
        ]
    return [
        "Authorization: none (--auth none): every request is served, without a token",
        f"Try SMART locally: {program} serve --auth smart --dev-issuer-key {key}{serve_options}",
        f"  then: {curl}",
    ]


def _log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
