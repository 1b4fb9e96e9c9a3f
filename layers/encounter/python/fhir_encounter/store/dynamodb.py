"""DynamoDB calls shared by the repository and the writer: the one client factory, the one
batch helper (botocore already retries throttling; this retries unprocessed keys), and the
mapping of service faults to StoreUnavailableError."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from fhir_encounter.errors import StoreUnavailableError
from fhir_encounter.store.keys import PARTITION_KEY, Item

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

# Queries of one search in flight at once: an OR of patients, the period walk's partitions (a
# year's window opens up to ~18), the pages read ahead of a counting walk. The waits are network
# round trips, not CPU: enough threads that a window's partitions go out in one round.
PARALLEL_QUERIES = 16
# A request: worst case 3 sends x (1 s + 3 s) plus backoff stays inside the function's 15 s timeout
# (botocore's max_attempts would count retries only: total_max_attempts counts every send). A kept
# connection for each query thread, the page-bodies thread and the handler's own (botocore keeps
# 10 by default and would open and drop the rest: a new TLS handshake each time). No client-side
# validation of the requests, which the repository builds from checked values (DynamoDB still
# checks them): it was ~4 ms of client CPU for a search of 13 Queries.
REQUEST_CONFIG = Config(
    connect_timeout=1,
    read_timeout=3,
    retries={"total_max_attempts": 3, "mode": "standard"},
    tcp_keepalive=True,
    max_pool_connections=PARALLEL_QUERIES + 2,
    parameter_validation=False,
)
# A load: patient, with botocore's adaptive retries absorbing throttling; a connection for each of
# its writers; no client-side validation of the items, which the writer builds (DynamoDB still checks).
LOAD_WORKERS = 4
LOAD_CONFIG = Config(
    connect_timeout=5,
    read_timeout=30,
    retries={"total_max_attempts": 10, "mode": "adaptive"},
    max_pool_connections=2 * LOAD_WORKERS,
    parameter_validation=False,
)
# DynamoDB Local accepts any credentials, but boto3 wants some (and a region) before it signs.
LOCAL_CREDENTIALS = {"aws_access_key_id": "local", "aws_secret_access_key": "local"}
LOCAL_REGION = "us-east-1"
BATCH_GET_LIMIT = 100
BATCH_WRITE_LIMIT = 25
UNPROCESSED_ATTEMPTS = 8
TRANSIENT_ERROR_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "TransactionConflictException",
    }
)
BUSY_TEXT = "The Encounter store is busy; retry the request later"
Sleep = Callable[[float], None]


class UnprocessedError(RuntimeError):
    """DynamoDB left keys or items unprocessed after every retry."""


@dataclass(slots=True)
class ReadCost:
    """What one request read: Queries made, index rows read (returned or only counted), keys
    looked up (GetItem, BatchGetItem), read capacity consumed. Queries run on several threads:
    each response is recorded under the lock."""

    queries: int = 0
    rows: int = 0
    keys: int = 0
    read_units: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def figures(self) -> dict[str, float]:
        """What the read and search routes log of a request's reads (tests/support.py READ_COST)."""
        return {
            "queries": self.queries,
            "rows_read": self.rows,
            "keys_read": self.keys,
            "read_units": round(self.read_units, 2),
        }

    def record_lookup(self, response: Mapping[str, Any], keys: int) -> None:
        """One GetItem or BatchGetItem: the keys it asked for, found or not (DynamoDB charges a
        missing item's read as well), and the capacity it consumed."""
        with self._lock:
            self.keys += keys
            self._add_units(response)

    def record_query(self, response: Mapping[str, Any]) -> None:
        """One Query's response: the rows it read (returned or only counted) and its capacity."""
        with self._lock:
            self.queries += 1
            self.rows += response.get("ScannedCount", len(response.get("Items", ())))
            self._add_units(response)

    def _add_units(self, response: Mapping[str, Any]) -> None:
        consumed = response.get("ConsumedCapacity", ())
        for capacity in [consumed] if isinstance(consumed, dict) else consumed:
            self.read_units += capacity.get("CapacityUnits", 0.0)


def dynamodb_client(endpoint_url: str | None = None, config: Config = REQUEST_CONFIG) -> DynamoDBClient:
    """A client for ``endpoint_url`` (DynamoDB Local) or, when None, AWS as configured.

    With an endpoint URL and no credentials or region configured, dummy ones are used: DynamoDB
    Local works without an AWS setup.
    """
    session = boto3.session.Session()
    options: dict[str, Any] = {}
    if endpoint_url:
        if session.get_credentials() is None:
            options.update(LOCAL_CREDENTIALS)
        if session.region_name is None:
            options["region_name"] = LOCAL_REGION
    client: DynamoDBClient = session.client(
        "dynamodb", endpoint_url=endpoint_url or None, config=config, **options
    )
    return client


def call[T](operation: Callable[..., T], **kwargs: Any) -> T:
    """One request-path DynamoDB call; throttling and faults become StoreUnavailableError (503),
    without AWS error text. Other client errors are bugs and stay as they are."""
    try:
        return operation(**kwargs)
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code in TRANSIENT_ERROR_CODES or status >= 500:
            raise StoreUnavailableError(BUSY_TEXT) from None
        raise
    except (ConnectTimeoutError, ReadTimeoutError, EndpointConnectionError, ConnectionClosedError):
        raise StoreUnavailableError("The Encounter store did not answer in time; retry later") from None


def batch_get(
    client: DynamoDBClient,
    table: str,
    keys: list[Item],
    *,
    attributes: list[str] | None = None,
    cost: ReadCost | None = None,
    sleep: Sleep = time.sleep,
    key_of: Callable[[Item], str] | None = None,
) -> dict[str, Item]:
    """Items by partition key (or by ``key_of`` the item), 100 keys a request, unprocessed keys
    retried with backoff."""
    found: dict[str, Item] = {}
    for start in range(0, len(keys), BATCH_GET_LIMIT):
        request: dict[str, Any] = {"Keys": keys[start : start + BATCH_GET_LIMIT]}
        if attributes:
            names = {f"#a{n}": name for n, name in enumerate([PARTITION_KEY, *attributes])}
            request["ProjectionExpression"] = ", ".join(names)
            request["ExpressionAttributeNames"] = names
        pending: Any = {table: request}
        for attempt in range(UNPROCESSED_ATTEMPTS):
            response = call(client.batch_get_item, RequestItems=pending, ReturnConsumedCapacity="TOTAL")
            if cost is not None:
                cost.record_lookup(dict(response), len(pending[table]["Keys"]))
            for item in response.get("Responses", {}).get(table, []):
                found[key_of(item) if key_of else item[PARTITION_KEY]["S"]] = item
            pending = response.get("UnprocessedKeys") or {}
            if not pending:
                break
            if attempt + 1 < UNPROCESSED_ATTEMPTS:
                _backoff(attempt, sleep)
        else:
            raise UnprocessedError("DynamoDB left keys unprocessed after every retry")
    return found


def batch_write(
    client: DynamoDBClient, table: str, requests: list[Any], *, sleep: Sleep = time.sleep
) -> None:
    """Put and delete requests, 25 a request, unprocessed items retried with backoff."""
    for start in range(0, len(requests), BATCH_WRITE_LIMIT):
        pending: Any = {table: requests[start : start + BATCH_WRITE_LIMIT]}
        for attempt in range(UNPROCESSED_ATTEMPTS):
            response = client.batch_write_item(RequestItems=pending)
            pending = response.get("UnprocessedItems") or {}
            if not pending:
                break
            if attempt + 1 < UNPROCESSED_ATTEMPTS:
                _backoff(attempt, sleep)
        else:
            raise UnprocessedError("DynamoDB left items unprocessed after every retry")


def _backoff(attempt: int, sleep: Sleep) -> None:
    sleep(min(0.05 * 2**attempt, 2.0) * random.uniform(0.5, 1.0))  # noqa: S311 (jitter)
