"""The README's date example against one Query: `date=ge2024-01-01&date=lt2024-02-01` on the 500
seeded Encounters (`make run`'s data), through the search handler, against bare boto3's single Query
of one period partition for a page. Interleaved, medians.

Three ways: as it is here (DynamoDB Local shares the two cores, so every Query is CPU on both ends);
with a fixed round trip added to every request of both (a botocore before-send hook that sleeps, as
a network would hold each request, in the thread that sent it); and the client CPU of each (process
time), which on AWS is what the handler adds beyond the round trips.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from tests.bench.rows import Row, row

TABLE = "encounters-example"
QUERY = {"date": ["ge2024-01-01", "lt2024-02-01"]}
PARTITION = "c0#2024"  # one period partition of the window, read for a page as a client would
TARGET = "<= 3"
ROUND_TRIP_MS = 10.0
RUNS = 31


def example_rows(endpoint: str, settings_environment: dict[str, str]) -> list[Row]:
    from fhir_encounter.config import Settings
    from fhir_encounter.search.parameters import value_paths
    from fhir_encounter.store.dynamodb import dynamodb_client
    from fhir_encounter.store.writer import EncounterWriter
    from fhir_encounter_tools.ingest.seed import SEED, synthetic_encounters
    from fhir_encounter_tools.tables import create_table, tools_client
    from tests.bench.__main__ import answer, bare_client, quiet_logs, search_event
    from tests.support import build_handlers

    create_table(tools_client(endpoint), TABLE)
    EncounterWriter(tools_client(endpoint), TABLE, value_paths()).write(list(synthetic_encounters(500, SEED)))
    environment = {**settings_environment, "ENCOUNTER_TABLE": TABLE, "DYNAMODB_ENDPOINT_URL": endpoint}
    settings = Settings.from_environment(environment)
    client, bare = dynamodb_client(endpoint), bare_client(endpoint)
    delay = {"ms": 0.0}
    for each in (client, bare):
        each.meta.events.register("before-send.dynamodb", lambda **_: time.sleep(delay["ms"] / 1000))
    search = build_handlers(client, settings)["/Encounter"]
    quiet_logs(settings.service_name)
    event = search_event(QUERY)

    def project() -> None:
        answer(search, event)

    def floor() -> None:
        bare.query(
            TableName=TABLE,
            IndexName="period-start-index",
            KeyConditionExpression="start_bucket = :p",
            ExpressionAttributeValues={":p": {"S": PARTITION}},
            Limit=11,
        )

    rows = []
    for ms, label in ((0.0, "as here"), (ROUND_TRIP_MS, f"{ROUND_TRIP_MS:.0f} ms round trip")):
        delay["ms"] = ms
        wall = _paired(project, floor, time.perf_counter)
        rows.append(row(f"README date example vs one Query, ms ({label})", *wall, TARGET))
    delay["ms"] = 0.0
    cpu = _paired(project, floor, time.process_time)
    rows.append(row("README date example vs one Query, client CPU ms", *cpu))
    return rows


def _paired(
    project: Callable[[], None], floor: Callable[[], None], clock: Callable[[], float]
) -> tuple[float, float]:
    """Medians (ms) of RUNS interleaved timings of each, after two warm-up calls."""
    samples: dict[str, list[float]] = {"project": [], "bare": []}
    for call in (project, floor, project, floor):
        call()
    for _ in range(RUNS):
        for name, call in (("project", project), ("bare", floor)):
            started = clock()
            call()
            samples[name].append((clock() - started) * 1000)
    return statistics.median(samples["project"]), statistics.median(samples["bare"])
