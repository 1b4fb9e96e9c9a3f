"""Benchmarks (`make bench`): print figures against the targets; never part of `make test`.

Against DynamoDB Local (started here, on 127.0.0.1) with a seeded data set:
- load throughput of the writer (Encounters per second);
- cold start: a fresh Python process importing a handler module (Lambda's init phase), then its
  first request (client creation included);
- warm per-request latency (p50 / p95) of read and of each search shape, in-process;
- DynamoDB read cost per request (consumed read capacity units, as DynamoDB reports them);
- against the floor, bare boto3 doing the same DynamoDB work: `fhir-encounter load` against one
  batch_writer (tests/bench/loading.py), and a cold read function against a fresh boto3 GetItem
  (tests/bench/coldstart.py), each with its ratio and target.

Figures from this machine are for comparing commits; Lambda's arm64 cores differ.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.figures import percentile

ROOT = Path(__file__).resolve().parents[2]
TABLE = "encounters-bench"

# Targets: what a change must not make worse.
TARGETS = {
    "cold_import_ms": 1500.0,  # handler module import in a fresh process
    "warm_p95_ms": 60.0,  # any warm request against DynamoDB Local
    "next_page_read_units": 8.0,  # a cursor page of 10: about one page of rows and items
    "patient_page_read_units": 8.0,  # first page of a typical patient's encounters, total included
}


def timed(function: Callable[[], Any], repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def cold_start(endpoint: str, encounter_id: str, runs: int) -> tuple[float, float]:
    """Median ms to import the read handler in a fresh process, and of its first request."""
    script = f"""
import json, sys, time
import importlib.util
started = time.perf_counter()
spec = importlib.util.spec_from_file_location("app", "functions/read_encounter/app.py")
READ = importlib.util.module_from_spec(spec)
spec.loader.exec_module(READ)
imported = time.perf_counter()
from fhir_encounter_tools.devserver.events import LocalContext, rest_api_event
event = rest_api_event(method="GET", path="/Encounter/{encounter_id}", resource="/Encounter/{{id}}",
                       path_parameters={{"id": "{encounter_id}"}})
response = READ.lambda_handler(event, LocalContext())
assert response["statusCode"] == 200, response["statusCode"]
done = time.perf_counter()
print(json.dumps([(imported - started) * 1000, (done - imported) * 1000]))
"""
    env = {
        **os.environ,
        "DYNAMODB_ENDPOINT_URL": endpoint,
        "ENCOUNTER_TABLE": TABLE,
        "PYTHONDONTWRITEBYTECODE": "",
    }
    imports, firsts = [], []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, check=True
        )
        imported_ms, first_ms = json.loads(out.stdout.strip().splitlines()[-1])
        imports.append(imported_ms)
        firsts.append(first_ms)
    return statistics.median(imports), statistics.median(firsts)


class ReadUnits(logging.Handler):
    """Keeps the read units that the search function logs for each request ("search answered")."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.last = 0.0

    def emit(self, record: logging.LogRecord) -> None:
        units = getattr(record, "read_units", None)
        if isinstance(units, float | int):
            self.last = float(units)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--count", type=int, default=5000, help="Encounters to seed (default 5000)")
    parser.add_argument("--repeat", type=int, default=100, help="requests per scenario (default 100)")
    parser.add_argument("--cold-runs", type=int, default=7, help="fresh processes for cold start (default 7)")
    parser.add_argument(
        "--load-count", type=int, default=20_000, help="Encounters for load vs batch_writer (default 20000)"
    )
    args = parser.parse_args()

    # The function modules compose their handlers from the environment when tests.support loads
    # them (as Lambda's init does): the test environment must be in place first.
    from tests.environment import TEST_ENVIRONMENT

    os.environ.update(TEST_ENVIRONMENT)
    from aws_lambda_powertools import Logger, Metrics

    from fhir_encounter.config import Settings
    from fhir_encounter.runtime import Runtime, Store
    from fhir_encounter.store import keys
    from fhir_encounter.store.dynamodb import dynamodb_client
    from fhir_encounter.store.writer import EncounterWriter
    from fhir_encounter_tools.devserver.dynamodb_local import dynamodb_local
    from fhir_encounter_tools.devserver.events import LocalContext, rest_api_event
    from fhir_encounter_tools.ingest.seed import SEED, synthetic_encounters
    from fhir_encounter_tools.tables import create_table, tools_client
    from tests.bench.coldstart import cold_start_rows
    from tests.bench.loading import loading_rows
    from tests.bench.rows import print_rows
    from tests.support import SEARCH, handlers_on, read, search

    results: dict[str, float] = {}
    with dynamodb_local() as endpoint:
        environment = {
            **TEST_ENVIRONMENT,
            "ENCOUNTER_TABLE": TABLE,
            "DYNAMODB_ENDPOINT_URL": endpoint,
            "POWERTOOLS_LOG_LEVEL": "ERROR",
        }
        settings = Settings.from_environment(environment)
        loader_client = tools_client(endpoint)
        create_table(loader_client, TABLE)
        resources = list(synthetic_encounters(args.count, SEED))
        started = time.perf_counter()
        EncounterWriter(loader_client, TABLE).write(resources)
        seconds = time.perf_counter() - started
        results["load_items_per_s"] = args.count / seconds
        print(f"seeded {args.count} Encounters in {seconds:.1f} s: {args.count / seconds:.0f} items/s")

        patient_counts: dict[str, int] = {}
        for resource in resources:
            reference = resource.get("subject", {}).get("reference", "")
            patient_counts[reference] = patient_counts.get(reference, 0) + 1
        patients = sorted(
            (r for r in patient_counts if r.startswith("Patient/")), key=lambda r: patient_counts[r]
        )
        busiest, typical = patients[-1], patients[len(patients) // 2]
        print(f"typical patient: {patient_counts[typical]} Encounters; busiest: {patient_counts[busiest]}")
        sample_id = str(resources[len(resources) // 2]["id"])

        os.environ.update(environment)  # for the fresh processes of the cold start
        imported_ms, first_ms = cold_start(endpoint, sample_id, runs=args.cold_runs)
        results["cold_import_ms"] = imported_ms
        results["cold_first_request_ms"] = first_ms

        # The handlers as each function composes them, on the client a function would create.
        with handlers_on(dynamodb_client(endpoint), settings):
            # One audit line per request would bury the figures: the bench keeps them quiet.
            logging.getLogger(f"{settings.service_name}-audit").setLevel(logging.WARNING)
            _, _, first_page = search("_count=10")
            next_url = next(link["url"] for link in first_page["link"] if link["relation"] == "next")
            next_query = parse_qs(urlsplit(next_url).query)
            scenarios: dict[str, Callable[[], Any]] = {
                "read": lambda: read(sample_id),
                "search patient (typical)": lambda: search(f"patient={typical}"),
                "search patient (busiest)": lambda: search(f"patient={busiest}"),
                "search patient+date (busiest)": lambda: search(f"patient={busiest}&date=ge2022-01-01"),
                "search date (one month)": lambda: search("date=2024-03"),
                "search all, first page": lambda: search("_count=10"),
                "search all, next page (cursor)": lambda: search(next_query),
                "search all, _offset=2000": lambda: search("_count=10&_offset=2000"),
                "search all, _total=none": lambda: search("_count=10&_total=none"),
            }
            print(f"\n{'scenario':34} {'p50 ms':>8} {'p95 ms':>8}")
            worst_p95 = 0.0
            for name, call in scenarios.items():
                for _ in range(5):  # warm the JIT of DynamoDB Local and the client's connection pool
                    call()
                samples = timed(call, args.repeat)
                p50, p95 = percentile(samples, 0.5), percentile(samples, 0.95)
                worst_p95 = max(worst_p95, p95) if "all" not in name and "date" not in name else worst_p95
                print(f"{name:34} {p50:8.1f} {p95:8.1f}")
            results["warm_p95_ms"] = worst_p95

        # Read cost: the search function's own figure, from its "search answered" log record.
        units = ReadUnits()
        cost_settings = settings.model_copy(update={"service_name": "bench-read-units", "log_level": "INFO"})
        runtime = Runtime(
            cost_settings,
            Logger(service=cost_settings.service_name, level="INFO", logger_handler=units),
            None,  # no tracer: tracing is off
            Metrics(service=cost_settings.service_name, namespace=cost_settings.metrics_namespace),
            Logger(service=f"{cost_settings.service_name}-audit", level="WARNING"),
        )
        search_handler = SEARCH.create_handler(runtime, Store.from_settings(cost_settings))

        def read_units(query: dict[str, list[str]]) -> float:
            event = rest_api_event(method="GET", path="/Encounter", resource="/Encounter", query=query)
            units.last = -1.0
            response = search_handler(event, LocalContext())
            assert response["statusCode"] == 200, response["body"]
            assert units.last >= 0, "the search logged no read units"
            return units.last

        costs: dict[str, float] = {}
        for label, text in [
            ("patient_page_read_units", f"patient={typical}"),
            ("busiest_patient_page_read_units", f"patient={busiest}"),
            ("all_first_page_read_units", "_count=10"),
            ("all_total_none_read_units", "_count=10&_total=none"),
            ("date_month_read_units", "date=2024-03"),
        ]:
            costs[label] = read_units(parse_qs(text))
        costs["next_page_read_units"] = read_units(next_query)
        print("\nDynamoDB read capacity units per request (eventually consistent reads):")
        for label, value in costs.items():
            print(f"  {label:28} {value:8.1f}")
        results.update(costs)

        read_event = rest_api_event(
            method="GET",
            path=f"/Encounter/{sample_id}",
            resource="/Encounter/{id}",
            path_parameters={"id": sample_id},
        )
        secret = TEST_ENVIRONMENT["CURSOR_SECRET"]
        floor = [
            *loading_rows(endpoint, args.load_count),
            *cold_start_rows(
                endpoint, TABLE, secret, read_event, keys.encounter_key(sample_id), args.cold_runs
            ),
        ]
        floor_met = print_rows(floor)

    print("\nTargets:")
    failed = 0
    for name, target in TARGETS.items():
        value = results[name]
        ok = value <= target
        failed += not ok
        print(f"  {name:28} {value:10.1f}  target <= {target:<8} {'ok' if ok else 'MISSED'}")
    print(f"\nload: {results['load_items_per_s']:.0f} items/s; cold first request: {first_ms:.0f} ms")
    return 1 if failed or not floor_met else 0


if __name__ == "__main__":
    sys.exit(main())
