"""Benchmarks against the floor (`make bench`, `make bench SIZE=200000`); never part of `make test`.

On one DynamoDB Local (started here, on 127.0.0.1), with one data set (tests/bench/dataset.py,
``--size`` Encounters, loaded with the project's loader), each figure is measured for the project
and for bare boto3 doing the same DynamoDB work (tests/bench/floor.py), their samples interleaved,
and printed as a table: figure | project | bare boto3 | ratio | target | ok.

- Latency (warm p50): the functions' handlers in-process (as their app.py composes them, on the
  project's client factory, log level INFO as deployed, log output discarded; tracing and metrics
  off: there is no X-Ray daemon or CloudWatch here), invoked with API Gateway REST events. Before
  timing, each pair's answers are checked to hold the same ids and total.
- Rows read per match for every search shape (tests/bench/shapes.py): date shapes must stay within
  1.2; the other shapes are reported.
- RSS after 1,000 requests (tests/bench/memory.py), fresh processes.
- Cold start and load come from tests/bench/coldstart.py and tests/bench/loading.py when present.
- Sizes per Encounter from the writer's own items (tests/bench/sizing.py), for docs/performance.md's sizing.

Figures from this machine are for comparing commits; Lambda's arm64 cores differ. The exit status
is 0 whatever the figures: it is a report, whose last line says how many figures are in target.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import json
import logging
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

from tests.bench.dataset import SEED, Dataset, generate
from tests.bench.report import Figure, summary, table
from tests.bench.shapes import (
    ReadCounter,
    Reading,
    Shape,
    other_shapes,
    prefix_shapes,
    sort_shapes,
    value_shapes,
    window_shapes,
)

TABLE = "encounters-bench"
PAGE = 10  # the default _count
WARMUP = 5
MIN_SAMPLES = 15
LATENCY_TARGET = 1.3  # read, cursor, patient and US Core first pages: within 1.3x of the ideal floor
BROWSE_TARGET = 3.0  # a date window's first page, browsing without criteria
BASE_URL = "https://bench.invalid/fhir"  # the oracle's (the shapes' references are relative)
LOADED_AFTER = "2026-01-01T00:00:00Z"
LOAD_WORKERS = 4
LOAD_HOOK_SIZE = (
    3_000  # the load figure: 3 rounds of project and bare loads (a ratio; the full set's rate is printed)
)


@dataclass(frozen=True)
class Options:
    size: int
    seed: int
    samples: int
    seconds: float


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--size", type=int, default=20_000, help="Encounters in the data set (20000)")
    parser.add_argument("--seed", type=int, default=SEED, help="the data set's random seed")
    parser.add_argument("--samples", type=int, default=200, help="at most this many pairs per figure (200)")
    parser.add_argument("--seconds", type=float, default=20.0, help="at most about this long per figure (20)")
    args = parser.parse_args()
    options = Options(args.size, args.seed, args.samples, args.seconds)

    # The function modules compose their handlers from the environment when tests.support loads
    # them (as Lambda's init does): the test environment must be in place first.
    from tests.environment import TEST_ENVIRONMENT

    os.environ.update(TEST_ENVIRONMENT)
    from fhir_encounter_tools.devserver.dynamodb_local import dynamodb_local

    with dynamodb_local() as endpoint:
        figures, shapes = run(endpoint, options)
    print(f"\n## Figures ({options.size:,} Encounters; ms are this machine's, DynamoDB Local)\n")
    print(table(figures))
    print(f"\n## Rows read per match, every search shape ({options.size:,} Encounters)\n")
    print(table(shapes))
    print(f"\n{summary([*figures, *shapes])}")
    return 0


def run(endpoint: str, options: Options) -> tuple[list[Figure], list[Figure]]:
    from fhir_encounter.config import Settings
    from fhir_encounter.store.dynamodb import dynamodb_client
    from fhir_encounter_tools.tables import create_table, tools_client
    from tests.bench import sizing
    from tests.bench.floor import Floor
    from tests.environment import TEST_ENVIRONMENT

    environment = {
        **TEST_ENVIRONMENT,
        "ENCOUNTER_TABLE": TABLE,
        "DYNAMODB_ENDPOINT_URL": endpoint,
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }
    os.environ.update(environment)
    from tests.support import build_handlers  # composes the functions: after the environment

    settings = Settings.from_environment(environment)
    started = time.perf_counter()
    data = generate(options.size, options.seed)
    print(f"generated {data.size:,} Encounters in {time.perf_counter() - started:.1f} s", flush=True)
    typical, busiest = data.typical_patient, data.busiest_patient
    counts = data.patient_counts
    print(f"typical patient {counts[typical]:,} Encounters, busiest {counts[busiest]:,}")
    create_table(tools_client(endpoint), TABLE)
    load_rate = load(endpoint, data)
    print(
        f"loaded with the project's loader ({LOAD_WORKERS} at once): {load_rate:,.0f} Encounters/s",
        flush=True,
    )

    handlers = build_handlers(dynamodb_client(endpoint), settings)
    quiet_logs(settings.service_name)
    floor = Floor(bare_client(endpoint), TABLE)
    figures = latency_figures(handlers, endpoint, data, options)

    counter = ReadCounter()
    counted_client = dynamodb_client(endpoint)
    counter.attach(counted_client)
    counted_search = build_handlers(counted_client, settings)["/Encounter"]
    quiet_logs(settings.service_name)
    first = json.loads(answer(counted_search, search_event(parse_qs(f"patient={typical}"))))
    cursor = Shape(
        "next page (typical patient, page 2)", urlsplit(link_of(first, "next")).query, resumed=True
    )
    windows = window_shapes()
    others = [*prefix_shapes(), *other_shapes(data), cursor, *value_shapes(data), *sort_shapes(data)]
    readings = {shape: reading(counted_search, counter, shape) for shape in [*windows, *others]}
    print_readings(readings.values())
    figures += [per_match_figure(readings[shape]) for shape in windows]
    shapes = [per_match_figure(readings[shape]) for shape in others]

    figures += memory_figures(handlers, floor, data, environment)
    figures += hooked_figures(endpoint, data, environment, load_rate)
    print("\nBytes per Encounter (the writer's items, DynamoDB's size rules):")
    for line in sizing.lines(sizing.measure(data.encounters)):
        print(f"  {line}")
    return figures, shapes


# ---- loading ------------------------------------------------------------------------------------


def load(endpoint: str, data: Dataset) -> float:
    """Load the data set with the project's loader (validation and writer), LOAD_WORKERS slices at
    once; Encounters per second."""
    from fhir_encounter.search.parameters import value_paths
    from fhir_encounter.store.writer import EncounterWriter
    from fhir_encounter_tools.ingest.loader import load_resources
    from fhir_encounter_tools.tables import tools_client

    def load_slice(part: int) -> int:
        writer = EncounterWriter(tools_client(endpoint), TABLE, value_paths())
        report = load_resources(data.encounters[part::LOAD_WORKERS], writer, source=f"bench slice {part}")
        assert report.rejected == 0, report.summary()
        assert report.unreadable == 0, report.summary()
        return report.written

    started = time.perf_counter()
    with ThreadPoolExecutor(LOAD_WORKERS) as pool:
        written = sum(pool.map(load_slice, range(LOAD_WORKERS)))
    assert written == data.size, f"{written} of {data.size} written"
    return data.size / (time.perf_counter() - started)


# ---- latency ------------------------------------------------------------------------------------


def latency_figures(handlers: dict[str, Any], endpoint: str, data: Dataset, options: Options) -> list[Figure]:
    """Warm p50 of each latency shape against the ideal floor (tests/bench/ideal.py), built here
    from the oracle's answers: reads, every patient and US Core first page and a cursor page
    (target 1.3x), a month's date window and browsing without criteria (target 3x)."""
    from tests import oracle
    from tests.bench.ideal import Ideal

    read, search = handlers["/Encounter/{id}"], handlers["/Encounter"]
    sample, typical = data.sample_id, data.typical_patient
    # The oracle needs meta.lastUpdated, which the loader set to the time of the load: after 2020.
    loaded = [{**e, "meta": {"lastUpdated": LOADED_AFTER}} for e in data.encounters]
    shapes = latency_shapes(data)
    started = time.perf_counter()
    matches = {
        name: oracle.search(loaded, parse_qsl(query), base_url=BASE_URL)[:keep]
        for name, query, _, keep, _ in shapes
    }
    matches["read"] = [next(e for e in loaded if e["id"] == sample)]
    whole = {name for name, _, _, _, over_encounters in shapes if over_encounters}
    ideal = Ideal.build(bare_client(endpoint), matches, whole | {"read"})
    print(
        f"ideal floor: {sum(map(len, matches.values())):,} partition rows in "
        f"{time.perf_counter() - started:.1f} s",
        flush=True,
    )
    read_event = read_event_of(sample)
    figures = [
        pair_figure(
            "read, warm p50",
            lambda: read(read_event, CONTEXT),
            lambda: ideal.read(sample),
            same_id,
            options,
        )
    ]
    for name, query, target, keep, _ in shapes:
        event = search_event(parse_qs(query))
        bare = functools.partial(ideal.first_page_text if keep is None else ideal.uncounted_page, name, PAGE)
        project = functools.partial(search, event, CONTEXT)
        figures.append(pair_figure(name, project, bare, same_page, options, target))
    first = json.loads(answer(search, search_event(parse_qs(f"patient={typical}"))))
    next_event = search_event(parse_qs(urlsplit(link_of(first, "next")).query))
    patient_shape = shapes[0][0]
    _, after = ideal.first_page(patient_shape, PAGE)
    assert after is not None
    figures.append(
        pair_figure(
            "next page through a cursor (typical patient, page 2)",
            lambda: search(next_event, CONTEXT),
            lambda: ideal.next_page(patient_shape, PAGE, after),
            same_page,
            options,
        )
    )
    return figures


def latency_shapes(data: Dataset) -> list[tuple[str, str, float, int | None, bool]]:
    """(figure, query, target, None for a first page with total or how many matches an uncounted
    page needs, whether an ideal index is over the Encounter items): the typical patient's comes
    first (the cursor figure resumes it)."""
    typical, busiest = data.typical_patient, data.busiest_patient
    counts = data.patient_counts
    shapes: list[tuple[str, str, float, int | None, bool]] = [
        (
            f"patient, first page with total (typical: {counts[typical]:,})",
            f"patient={typical}",
            LATENCY_TARGET,
            None,
            True,
        ),
        (
            f"patient, first page with total (busiest: {counts[busiest]:,})",
            f"patient={busiest}",
            LATENCY_TARGET,
            None,
            True,
        ),
    ]
    shapes += [
        (f"US Core {shape.name}, first page with total", shape.query, LATENCY_TARGET, None, False)
        for shape in value_shapes(data)
        if shape.name.startswith("patient (typical) + ")
    ]
    shapes += [
        (
            "date window of a month, first page with total",
            "date=ge2022-06-01&date=lt2022-07-01",
            BROWSE_TARGET,
            None,
            True,
        ),
        ("no criteria, `_total=none`", f"_count={PAGE}&_total=none", BROWSE_TARGET, PAGE + 1, True),
    ]
    return shapes


def pair_figure(
    name: str,
    project: Callable[[], dict[str, Any]],
    bare: Callable[[], str],
    same: Callable[[str, str], str],
    options: Options,
    target: float = LATENCY_TARGET,
) -> Figure:
    """Warm both, check that they answer alike (``same`` returns a note, or "" when they do),
    then time them interleaved."""
    for _ in range(WARMUP):
        project()
        bare()
    response = project()
    assert response["statusCode"] == 200, response.get("body")
    note = same(response["body"], bare())
    project_ms, bare_ms = paired(project, bare, options)
    return Figure(name, project_ms, bare_ms, target=None if note else target, note=note)


def paired(
    project: Callable[[], object], bare: Callable[[], object], options: Options
) -> tuple[float, float]:
    """Medians (ms) of interleaved samples: project then bare, bare then project, ...; at most
    ``options.samples`` pairs, fewer (at least MIN_SAMPLES) past ``options.seconds``."""
    samples: tuple[list[float], list[float]] = ([], [])
    deadline = time.monotonic() + options.seconds
    for n in range(options.samples):
        order = ((0, project), (1, bare)) if n % 2 == 0 else ((1, bare), (0, project))
        for side, call in order:
            started = time.perf_counter()
            call()
            samples[side].append((time.perf_counter() - started) * 1000)
        if n + 1 >= MIN_SAMPLES and time.monotonic() > deadline:
            break
    return statistics.median(samples[0]), statistics.median(samples[1])


# ---- rows read per match -------------------------------------------------------------------------


def reading(search: Any, counter: ReadCounter, shape: Shape) -> Reading:
    """What the first page of ``shape`` reads. When its count stops at its budget (4 s), the
    count alone is measured instead: the same search with ``_count=0`` under a long Lambda
    deadline (the count-only path counts until shortly before it), so that rows per match are
    known at any size; the page's bodies are then in neither the rows nor the floor."""
    counter.reset()
    started = time.perf_counter()
    bundle = json.loads(answer(search, search_event(parse_qs(shape.query))))
    ms = (time.perf_counter() - started) * 1000
    total, returned = bundle.get("total"), len(bundle.get("entry", []))
    stopped = total is None and "_total=none" not in shape.query
    if stopped:
        query = parse_qs(shape.query) | {"_count": ["0"]}
        counter.reset()
        started = time.perf_counter()
        bundle = json.loads(answer(search, search_event(query), LONG_CONTEXT))
        ms = (time.perf_counter() - started) * 1000
        total, returned = bundle["total"], 0
    return Reading(shape, counter.rows, counter.queries, counter.read_units, total, returned, ms, stopped)


def per_match_figure(r: Reading) -> Figure:
    note = "no match" if not r.floor else ""
    if r.count_stopped:
        note = "the first page's count stopped at its 4 s budget: the count alone (`_count=0`) measured"
    return Figure(f"rows read per match: {r.shape.name}", r.rows, r.floor, "rows", r.shape.target, note=note)


def print_readings(readings: Iterable[Reading]) -> None:
    print(
        f"\n{'search shape':44} {'rows':>8} {'floor':>8} {'per match':>9} {'queries':>7} {'RCU':>8} {'ms':>8}"
    )
    for r in readings:
        print(
            f"{r.shape.name:44} {r.rows:8,} {r.floor:8,} {r.per_match:9.2f} {r.queries:7,} "
            f"{r.read_units:8.1f} {r.ms:8.1f}"
        )


# ---- memory ------------------------------------------------------------------------------------


def memory_figures(
    handlers: dict[str, Any], floor: Any, data: Dataset, environment: dict[str, str]
) -> list[Figure]:
    from fhir_encounter.store.keys import SUBJECT_INDEX
    from tests.bench import memory

    typical = data.typical_patient
    search = handlers["/Encounter"]
    first = json.loads(answer(search, search_event(parse_qs(f"patient={typical}"))))
    searches = [
        search_event(parse_qs(f"patient={typical}")),
        search_event(parse_qs(urlsplit(link_of(first, "next")).query)),
        search_event(parse_qs(f"_count={PAGE}&_total=none")),
    ]
    _, after = floor.first_page(SUBJECT_INDEX, typical, PAGE)
    bare_searches = [
        ["first_page", SUBJECT_INDEX, typical, PAGE],
        ["next_page", SUBJECT_INDEX, typical, PAGE, after],
        ["unfiltered_page", PAGE],
    ]
    ids = [str(e["id"]) for e in data.encounters[:: max(1, data.size // 50)]]
    figures = []
    for name, function, events, calls in (
        (
            "RSS after 1,000 reads (read function)",
            "read_encounter",
            [read_event_of(i) for i in ids],
            [["read", i] for i in ids],
        ),
        ("RSS after 1,000 searches (search function)", "search_encounters", searches, bare_searches),
    ):
        project = memory.project_rss_mb(function, events, environment)
        bare = memory.bare_rss_mb(calls, environment)
        figures.append(Figure(name, project, bare, "MB"))
    return figures


# ---- cold start and load: tests/bench/coldstart.py and tests/bench/loading.py -------------------


def hooked_figures(
    endpoint: str, data: Dataset, environment: dict[str, str], load_rate: float
) -> list[Figure]:
    """Rows from the cold-start and loading modules (branch load-coldstart) when they are here:
    ``coldstart.cold_start_rows(endpoint, table, secret, read event, key)`` and
    ``loading.loading_rows(endpoint, count=...)``, each a list of rows with ``name``, ``project``,
    ``bare`` and ``target`` ("<= 1.5", ">= 0.8", or "" for none). One that is missing or fails is
    a row that says so: the rest of the report stands."""
    from fhir_encounter.store.keys import encounter_key

    secret = environment["CURSOR_SECRET"]
    event, key = read_event_of(data.sample_id), encounter_key(data.sample_id)
    cold = hooked(
        "tests.bench.coldstart",
        lambda module: module.cold_start_rows(endpoint, TABLE, secret, event, key),
        Figure("cold: import + first read", None, None, "ms", 1.5),
    )
    load_figure = Figure("load (project's loader, Encounters/s)", load_rate, None, "/s", 0.8, at_least=True)
    loading = hooked(
        "tests.bench.loading",
        lambda module: module.loading_rows(endpoint, count=min(data.size, LOAD_HOOK_SIZE)),
        load_figure,
    )
    example = hooked(
        "tests.bench.example",
        lambda module: module.example_rows(endpoint, environment),
        Figure("README date example vs one Query", None, None, "ms", 3.0),
    )
    return [*cold, *loading, *example]


def hooked(name: str, rows: Callable[[Any], Any], instead: Figure) -> list[Figure]:
    """``rows(module)`` as Figures; ``instead`` with a note when the module is missing or fails."""
    path = name.replace(".", "/") + ".py"
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as error:
        if error.name != name:
            raise
        return [replace(instead, note=f"bare not measured: {path} is not on this branch yet")]
    try:
        return [as_figure(row) for row in rows(module)]
    except Exception as error:  # a report: one failed figure must not lose the others
        print(f"{path} failed: {type(error).__name__}: {error}", file=sys.stderr)
        return [replace(instead, note=f"{path} failed ({type(error).__name__}): see stderr")]


def as_figure(row: Any) -> Figure:
    """A row of the cold-start or loading module as a Figure."""
    name, target_text = str(row.name), str(row.target or "")
    target = float(target_text.split()[1]) if target_text else None
    unit = "/s" if "/s" in name else "ms"
    return Figure(
        name, float(row.project), float(row.bare), unit, target, at_least=target_text.startswith(">=")
    )


# ---- events, answers, checks -------------------------------------------------------------------


class _Context:
    """The attributes of a Lambda context that the handlers read; ``remaining_ms`` is the time
    left before the function's timeout (15 s in template.yaml)."""

    function_name = "bench"
    function_version = "$LATEST"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench"
    aws_request_id = "bench"

    def __init__(self, remaining_ms: int) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


CONTEXT = _Context(15_000)
LONG_CONTEXT = _Context(3_600_000)  # a count-only search may count until shortly before this


def read_event_of(encounter_id: str) -> dict[str, Any]:
    from fhir_encounter_tools.devserver.events import rest_api_event

    return rest_api_event(
        method="GET",
        path=f"/Encounter/{encounter_id}",
        resource="/Encounter/{id}",
        path_parameters={"id": encounter_id},
    )


def search_event(query: dict[str, list[str]]) -> dict[str, Any]:
    from fhir_encounter_tools.devserver.events import rest_api_event

    return rest_api_event(method="GET", path="/Encounter", resource="/Encounter", query=query)


def answer(handler: Any, event: dict[str, Any], context: _Context = CONTEXT) -> str:
    response = handler(event, context)
    assert response["statusCode"] == 200, response.get("body")
    body: str = response["body"]
    return body


def same_id(project: str, bare: str) -> str:
    assert json.loads(project)["id"] == json.loads(bare)["id"], "the project and the floor read different ids"
    return ""


def same_page(project: str, bare: str) -> str:
    """The project's Bundle and the floor's hold the same ids (in order) and, when both count it,
    the same total; a note when the project's count stopped at its budget (no total: not alike)."""
    mine, floors = json.loads(project), json.loads(bare)
    assert [e["resource"]["id"] for e in mine.get("entry", [])] == [
        e["resource"]["id"] for e in floors["entry"]
    ], "the project and the floor answer different pages"
    if "total" in floors and "total" not in mine:
        return "the project's count stops at its 4 s budget (no total): not the same answer, not judged"
    if "total" in floors:
        assert mine["total"] == floors["total"], (mine["total"], floors["total"])
    return ""


def link_of(bundle: dict[str, Any], relation: str) -> str:
    return str(next(link["url"] for link in bundle["link"] if link["relation"] == relation))


def bare_client(endpoint: str) -> Any:
    import boto3

    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


def quiet_logs(service: str) -> None:
    """The functions' log lines (INFO, as deployed) are formatted as in Lambda, then discarded."""
    devnull = open(os.devnull, "w")  # noqa: SIM115 (kept open for the run)
    for name in (service, f"{service}-audit"):
        for handler in logging.getLogger(name).handlers:
            if isinstance(handler, logging.StreamHandler):
                handler.setStream(devnull)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
