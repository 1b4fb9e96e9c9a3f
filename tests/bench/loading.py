"""Loading against the floor: `fhir-encounter load` of an NDJSON file (reading, validation and the
existing-item check included) against one boto3 ``batch_writer`` putting the same items, each into
a new table on the same DynamoDB Local, interleaved; medians of Encounters per second. Then a
reload of the same file (every Encounter unchanged), reported beside the bare write. A warm-up
write comes first, unmeasured."""

from __future__ import annotations

import contextlib
import io
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer

from fhir_encounter.search.parameters import value_paths
from fhir_encounter.store.dynamodb import LOCAL_CREDENTIALS, LOCAL_REGION
from fhir_encounter.store.items import items_for_encounter
from fhir_encounter_tools.cli import main as cli_main
from fhir_encounter_tools.ingest.seed import SEED, synthetic_encounters
from fhir_encounter_tools.tables import create_table, tools_client
from tests.bench.rows import Row, row

TARGET = ">= 0.8"
VERSION, LAST_UPDATED = "1", "2025-01-01T00:00:00Z"


def bare_items(resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What a first load writes for ``resources``, as boto3's resource layer takes items."""
    deserializer = TypeDeserializer()
    return [
        {name: deserializer.deserialize(value) for name, value in item.items()}
        for resource in resources
        for item in items_for_encounter(
            {**resource, "meta": {"versionId": VERSION, "lastUpdated": LAST_UPDATED}},
            VERSION,
            LAST_UPDATED,
            value_paths(),
        )
    ]


def project_load(endpoint: str, table: str, path: Path) -> float:
    """Seconds that `fhir-encounter load` takes, as an operator runs it (summary line kept quiet)."""
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()) as summary:
        status = cli_main(["load", "--endpoint-url", endpoint, "--table", table, str(path)])
    seconds = time.perf_counter() - started
    if status != 0:
        raise RuntimeError(f"fhir-encounter load failed: {summary.getvalue().strip()}")
    return seconds


def bare_load(endpoint: str, table: str, items: list[dict[str, Any]]) -> float:
    """Seconds that one boto3 batch_writer takes to put ``items``."""
    session = boto3.session.Session(
        LOCAL_CREDENTIALS["aws_access_key_id"],
        LOCAL_CREDENTIALS["aws_secret_access_key"],
        region_name=LOCAL_REGION,
    )
    target = session.resource("dynamodb", endpoint_url=endpoint).Table(table)
    started = time.perf_counter()
    with target.batch_writer() as batch:
        for item in items:
            batch.put_item(Item=item)
    return time.perf_counter() - started


def loading_rows(endpoint: str, count: int = 20_000, rounds: int = 3) -> list[Row]:
    resources = list(synthetic_encounters(count, SEED))
    items = bare_items(resources)
    client = tools_client(endpoint)
    project: list[float] = []
    bare: list[float] = []
    reload = 0.0
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "encounters.ndjson"
        path.write_text("".join(json.dumps(resource) + "\n" for resource in resources))
        create_table(client, "bench-load-warm-up")  # DynamoDB Local's JIT warms up, unmeasured
        bare_load(endpoint, "bench-load-warm-up", items[: len(items) // 5])
        client.delete_table(TableName="bench-load-warm-up")
        for n in range(rounds):
            for kind in ("project", "bare") if n % 2 == 0 else ("bare", "project"):
                table = f"bench-load-{n}-{kind}"
                create_table(client, table)
                if kind == "project":
                    project.append(count / project_load(endpoint, table, path))
                    if n == 0:
                        reload = count / project_load(endpoint, table, path)
                else:
                    bare.append(count / bare_load(endpoint, table, items))
                client.delete_table(TableName=table)
    throughput = statistics.median(bare)
    return [
        row(
            f"load {count:,} Encounters (NDJSON), Encounters/s",
            statistics.median(project),
            throughput,
            TARGET,
        ),
        row(f"reload {count:,}, all unchanged, Encounters/s", reload, throughput),
    ]
