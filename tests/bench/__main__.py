"""Benchmarks (`make bench`): print figures against the targets; never part of `make test`.

Against DynamoDB Local (started here, on 127.0.0.1) with a seeded data set:
- load throughput of the writer (Encounters per second);
- cold start: a fresh Python process importing a handler module (Lambda's init phase), then its
  first request (client creation included);
- warm per-request latency (p50 / p95) of read and of each search shape, in-process;
- DynamoDB read cost per request (consumed read capacity units, as DynamoDB reports them).

Figures from this machine are for comparing commits; Lambda's arm64 cores differ.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

ROOT = Path(__file__).resolve().parents[2]
TABLE = "encounters-bench"

# Targets: what a change must not make worse.
TARGETS = {
    "cold_import_ms": 1500.0,  # handler module import in a fresh process
    "warm_p95_ms": 60.0,  # any warm request against DynamoDB Local
    "next_page_read_units": 8.0,  # a cursor page of 10: about one page of rows and items
    "patient_page_read_units": 8.0,  # first page of a typical patient's encounters, total included
}


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=5000, help="Encounters to seed (default 5000)")
    parser.add_argument("--repeat", type=int, default=100, help="requests per scenario (default 100)")
    args = parser.parse_args()

    # tests.conftest sets the test environment when imported: import it first, then override.
    from tests.support import TEST_SECRET, read, search

    os.environ.update({"ENCOUNTER_TABLE": TABLE, "POWERTOOLS_LOG_LEVEL": "ERROR"})
    import boto3

    from fhir_encounter import api, config
    from fhir_encounter_tools.devserver.dynamodb_local import dynamodb_local
    from fhir_encounter_tools.ingest.seed import synthetic_encounters
    from fhir_encounter_tools.tables import create_table
    from fhir_encounter.store.writer import EncounterWriter
    from fhir_encounter.search.query import parse_search
    from fhir_encounter.store import repository
    from fhir_encounter.search.cursor import decode_cursor, search_fingerprint

    results: dict[str, float] = {}
    with dynamodb_local() as endpoint:
        os.environ["DYNAMODB_ENDPOINT_URL"] = endpoint
        config.get_settings.cache_clear()
        repository.dynamodb_client.cache_clear()
        api.encounter_repository.cache_clear()
        client = boto3.client("dynamodb", endpoint_url=endpoint)
        create_table(client, TABLE)
        resources = list(synthetic_encounters(args.count, 7))
        started = time.perf_counter()
        EncounterWriter(client, TABLE).write(resources)
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

        imported_ms, first_ms = cold_start(endpoint, sample_id, runs=5)
        results["cold_import_ms"] = imported_ms
        results["cold_first_request_ms"] = first_ms

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

        repo = api.encounter_repository()
        now = time.time_ns() // 1000
        costs: dict[str, float] = {}
        for label, text in [
            ("patient_page_read_units", f"patient={typical}"),
            ("busiest_patient_page_read_units", f"patient={busiest}"),
            ("all_first_page_read_units", "_count=10"),
            ("all_total_none_read_units", "_count=10&_total=none"),
            ("date_month_read_units", "date=2024-03"),
        ]:
            query, _ = parse_search(parse_qs(text))
            costs[label] = repo.search(query, now).read_units
        query, _ = parse_search(next_query)
        cursor = decode_cursor(
            next_query["_cursor"][0], search_fingerprint(query.criteria_params, query.count), 10, TEST_SECRET
        )
        costs["next_page_read_units"] = repo.search(query, now, cursor).read_units
        print("\nDynamoDB read capacity units per request (eventually consistent reads):")
        for label, units in costs.items():
            print(f"  {label:28} {units:8.1f}")
        results.update(costs)

    print("\nTargets:")
    failed = 0
    for name, target in TARGETS.items():
        value = results[name]
        ok = value <= target
        failed += not ok
        print(f"  {name:28} {value:10.1f}  target <= {target:<8} {'ok' if ok else 'MISSED'}")
    print(f"\nload: {results['load_items_per_s']:.0f} items/s; cold first request: {first_ms:.0f} ms")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
