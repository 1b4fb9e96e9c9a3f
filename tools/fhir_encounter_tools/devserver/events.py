"""API Gateway REST API (v1) proxy events and a Lambda context, as the service would send them.

Used by ``fhir-encounter serve`` to call the real handlers in-process and by the tests.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


def rest_api_event(
    *,
    method: str,
    path: str,
    resource: str,
    path_parameters: Mapping[str, str] | None = None,
    query: Mapping[str, Sequence[str]] | None = None,
    headers: Mapping[str, str] | None = None,
    stage: str = "v1",
    stage_in_path: bool = True,
    body: str | None = None,
    is_base64_encoded: bool = False,
) -> dict[str, Any]:
    """A proxy-integration event; ``stage_in_path`` is False for a server that serves at the root;
    ``body`` as API Gateway passes it on (base64 when ``is_base64_encoded``)."""
    header_map = {"Host": "127.0.0.1:3000", "X-Forwarded-Proto": "http", **(headers or {})}
    multi_query = {name: list(values) for name, values in (query or {}).items()}
    request_id = str(uuid.uuid4())
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": dict(header_map),
        "multiValueHeaders": {name: [value] for name, value in header_map.items()},
        "queryStringParameters": {name: values[-1] for name, values in multi_query.items()} or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": dict(path_parameters) if path_parameters else None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource,
            "httpMethod": method,
            "path": f"/{stage}{path}" if stage_in_path else path,
            "stage": stage,
            "requestId": request_id,
            "extendedRequestId": request_id,
            "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime()),
            "requestTimeEpoch": int(time.time() * 1000),
            "protocol": "HTTP/1.1",
            "domainName": header_map["Host"],
            "apiId": "local",
            "accountId": "123456789012",
            "identity": {"sourceIp": "127.0.0.1", "userAgent": header_map.get("User-Agent", "")},
        },
        "body": body,
        "isBase64Encoded": is_base64_encoded,
    }


@dataclass
class LocalContext:
    """The attributes of a Lambda context that Powertools reads."""

    function_name: str = "local"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:local"
    aws_request_id: str = "local-request"
    log_group_name: str = "/aws/lambda/local"
    log_stream_name: str = "local"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000
