"""What an operator reads: one line per failure and per rejected Encounter (shared by the
command and the dev server). No AWS error text and no resource values."""

from __future__ import annotations

import sys

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ReadTimeoutError,
)

from fhir_encounter.errors import StoreUnavailableError
from fhir_encounter.store.dynamodb import TRANSIENT_ERROR_CODES, UnprocessedError
from fhir_encounter_tools.devserver.dynamodb_local import DynamoDBLocalError
from fhir_encounter_tools.ingest.loader import Rejection, SourceError
from fhir_encounter_tools.tables import TableSchemaError
from fhir_encounter_tools.template import TemplateError

PROGRAM = "fhir-encounter"


def error_message(error: BaseException, *, endpoint_url: str | None, table: str) -> str | None:
    """The one line an operator sees for a failure; None for a bug (which keeps its traceback).

    The only place that maps errors to text. No AWS error text and no resource values: the
    table, the endpoint, paths, error codes and names only.
    """
    where = f"at {endpoint_url}" if endpoint_url else "in AWS"
    match error:
        case SourceError() | TemplateError() | TableSchemaError() | DynamoDBLocalError():
            return str(error)
        case UnprocessedError() | StoreUnavailableError():
            return _busy(where, table)
        case ClientError() if _transient(error):  # throttling or a fault that outlasted botocore's retries
            return _busy(where, table)
        case EndpointConnectionError() | ConnectTimeoutError():
            return f"cannot reach DynamoDB {where}"
        case ReadTimeoutError():
            return f"DynamoDB {where} did not answer in time"
        case NoCredentialsError():
            return "no AWS credentials: configure them (aws configure, AWS_PROFILE) or pass --endpoint-url"
        case NoRegionError():
            return "no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION) or pass --endpoint-url"
        case ClientError():
            code = error.response.get("Error", {}).get("Code") or "unknown error"
            if code == "ResourceNotFoundException":
                return f"table '{table}' does not exist {where}: run `{PROGRAM} create-table` first"
            return f"DynamoDB {where} refused the request ({code})"
        case BotoCoreError():
            return f"DynamoDB client failed ({type(error).__name__})"
    return None


def _busy(where: str, table: str) -> str:
    return f"DynamoDB {where} stayed busy (table '{table}'); loading again resumes without duplicates"


def _transient(error: ClientError) -> bool:
    """Throttling or a service fault: what the request path answers 503 for (``dynamodb.call``)."""
    code = error.response.get("Error", {}).get("Code", "")
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return code in TRANSIENT_ERROR_CODES or status >= 500


def print_rejection(rejection: Rejection) -> None:
    """The line for an Encounter (or a file) that is not loaded; ``serve``'s seeding uses it too."""
    print(f"rejected {rejection}", file=sys.stderr)
