"""``fhir-encounter reindex``: links every stored Encounter under the registry's value paths and
then records on the table that it is (the bucket directory's ``value_paths``), which is what lets
searches use the value index on a table loaded by an earlier release.

It reads the table with a Scan of its Encounter items: an operator's migration, run once, never a
request path. Each Encounter goes through the loader's validation and the writer, which rewrites
an item whose ``index_version`` is not the current one (versionId and lastUpdated kept) and skips
one that is current, so a reindex that stops can be run again. Encounters written meanwhile by a
current writer are linked already.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, TextIO

from fhir_encounter.store import keys
from fhir_encounter.store.writer import EncounterWriter
from fhir_encounter_tools.ingest.loader import LoadReport, RejectionHandler, load_resources

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient


def stored_encounters(client: DynamoDBClient, table: str) -> Iterator[dict[str, Any]]:
    """Every Encounter resource the table holds (a paginated Scan of the Encounter items)."""
    paginator = client.get_paginator("scan")
    pages = paginator.paginate(
        TableName=table,
        FilterExpression="#s = :e",
        ProjectionExpression="#r",
        ExpressionAttributeNames={"#s": keys.SORT_KEY, "#r": keys.ATTR_RESOURCE},
        ExpressionAttributeValues={":e": {"S": keys.ENCOUNTER_SK}},
    )
    for page in pages:
        for item in page.get("Items", ()):
            yield json.loads(item[keys.ATTR_RESOURCE]["S"])


def reindex(
    client: DynamoDBClient,
    table: str,
    writer: EncounterWriter,
    *,
    on_reject: RejectionHandler | None = None,
    progress: TextIO | None = None,
    report: LoadReport | None = None,
) -> LoadReport:
    """Rewrites what is out of date; marks the table indexed only when every Encounter went through."""
    report = load_resources(
        stored_encounters(client, table),
        writer,
        source="table",
        on_reject=on_reject,
        progress=progress,
        report=report,
    )
    if not report.failed and not report.rejected:
        writer.mark_indexed()
    return report
