"""A bounded load test (`make load`); never part of `make test`.

Starts `fhir-encounter serve` on 127.0.0.1 (a free port, its own DynamoDB Local, ``--encounters``
seeded Encounters), runs ``--clients`` concurrent clients for ``--seconds`` of mixed traffic (reads
of enc-00001 ..; searches by patient, date window, status and appointment, with _total=none and
_count=0; next-link walks of several pages), prints throughput, p50/p99 latency per kind, errors
and 5xx, stops the server with SIGTERM by its pid, and exits 1 if any request failed.

An error is any answer but 200 (and any connection failure or timeout), or a walk that meets an
Encounter twice. `serve` runs one invocation at a time, as one Lambda execution environment does,
so the latencies include queueing behind the other clients.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fhir_encounter_tools.ingest.validation import STATUSES
from tests.environment import TEST_ENVIRONMENT
from tests.figures import percentile

ROOT = Path(__file__).resolve().parents[2]
WALK_PAGES = 5  # pages a walk follows at most
REQUEST_TIMEOUT = 30.0


@dataclass
class Sample:
    kind: str
    ms: float
    status: int  # 0: no HTTP answer (connection failure, timeout)
    error: str | None = None


@dataclass
class Client:
    """One client thread's random choices and what it saw."""

    base_url: str
    encounters: int
    rng: random.Random
    samples: list[Sample] = field(default_factory=list)

    def get(self, kind: str, url: str) -> dict[str, Any] | None:
        started = time.perf_counter()
        status, body, error = 0, b"", None
        request = urllib.request.Request(url, headers={"Accept": "application/fhir+json"})
        try:
            with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT) as response:
                status, body = response.status, response.read()
        except urllib.error.HTTPError as failure:
            status, body = failure.code, failure.read()
        except (OSError, TimeoutError) as failure:
            error = f"{type(failure).__name__}: {failure}"
        ms = (time.perf_counter() - started) * 1000
        if status != 200 and error is None:
            error = f"HTTP {status}: {body[:200].decode('utf-8', 'replace')}"
        self.samples.append(Sample(kind, ms, status, error))
        if error is not None:
            return None
        parsed: dict[str, Any] = json.loads(body)
        return parsed

    def search_url(self, params: list[tuple[str, str]]) -> str:
        return f"{self.base_url}/Encounter?{urlencode(params)}"

    def patient(self) -> str:
        return f"patient-{self.rng.randint(1, max(1, self.encounters // 4)):04d}"

    def window(self, days: int) -> list[tuple[str, str]]:
        start = self.rng.randint(0, 7 * 365 - days)
        low = time.strftime("%Y-%m-%d", time.gmtime(1546300800 + start * 86400))  # from 2019-01-01
        high = time.strftime("%Y-%m-%d", time.gmtime(1546300800 + (start + days) * 86400))
        return [("date", f"ge{low}"), ("date", f"lt{high}")]

    def read(self) -> None:
        number = self.rng.randint(1, self.encounters)
        body = self.get("read", f"{self.base_url}/Encounter/enc-{number:05d}")
        if body is not None and body.get("id") != f"enc-{number:05d}":
            self.samples[-1].error = f"read enc-{number:05d} answered {body.get('id')}"

    def search(self) -> None:
        rng = self.rng
        kind, params = rng.choice(
            [
                ("search patient", [("patient", self.patient())]),
                ("search patient+date", [("patient", self.patient()), *self.window(365)]),
                ("search date window", [*self.window(rng.choice((1, 7, 30)))]),
                ("search status", [("status", rng.choice(STATUSES)), *self.window(30)]),
                (
                    "search appointment",
                    [("appointment", f"appointment-{rng.randint(1, self.encounters // 2):04d}")],
                ),
                ("search _total=none", [*self.window(90), ("_total", "none")]),
                ("search _count=0", [("patient", self.patient()), ("_count", "0")]),
            ]
        )
        self.get(kind, self.search_url(params))

    def walk(self) -> None:
        """A search of many matches, then its next links: no Encounter may come twice."""
        params = self.rng.choice(
            [
                [*self.window(365), ("_count", "20")],
                [("status", "finished"), ("_count", "50"), ("_total", "none")],
                [("_count", "25")],
            ]
        )
        url: str | None = self.search_url(params)
        seen: set[str] = set()
        for page in range(WALK_PAGES):
            assert url is not None
            bundle = self.get("walk first page" if page == 0 else "walk next page", url)
            if bundle is None:
                return
            ids = [entry["resource"]["id"] for entry in bundle.get("entry", [])]
            if seen.intersection(ids) or len(set(ids)) != len(ids):
                self.samples[-1].error = "a walk met an Encounter twice"
                return
            seen.update(ids)
            url = next((link["url"] for link in bundle["link"] if link["relation"] == "next"), None)
            if url is None:
                return

    def run(self, until: float) -> None:
        while time.monotonic() < until:
            choice = self.rng.random()
            if choice < 0.4:
                self.read()
            elif choice < 0.85:
                self.search()
            else:
                self.walk()


def report(samples: list[Sample], seconds: float, clients: int, encounters: int) -> tuple[int, int]:
    """Prints the figures; (errors, 5xx)."""
    by_kind: dict[str, list[Sample]] = defaultdict(list)
    for sample in samples:
        by_kind[sample.kind].append(sample)
    errors = sum(1 for sample in samples if sample.error is not None)
    server_errors = sum(1 for sample in samples if sample.status >= 500)
    print(
        f"\n{len(samples)} requests in {seconds:.1f} s from {clients} clients: "
        f"{len(samples) / seconds:.1f} requests/s; {errors} errors, {server_errors} 5xx "
        f"({encounters} Encounters; {os.cpu_count()} cores, {platform.machine()}, "
        f"Python {platform.python_version()})"
    )
    print(f"\n{'kind':<22} {'requests':>9} {'p50 ms':>9} {'p99 ms':>9} {'errors':>7} {'5xx':>5}")
    for kind in sorted(by_kind):
        group = by_kind[kind]
        ms = [sample.ms for sample in group]
        print(
            f"{kind:<22} {len(group):>9} {percentile(ms, 0.5):>9.1f} {percentile(ms, 0.99):>9.1f} "
            f"{sum(1 for s in group if s.error is not None):>7} {sum(1 for s in group if s.status >= 500):>5}"
        )
    all_ms = [sample.ms for sample in samples]
    if all_ms:
        print(
            f"{'all':<22} {len(all_ms):>9} {percentile(all_ms, 0.5):>9.1f} {percentile(all_ms, 0.99):>9.1f}"
        )
    for sample in [s for s in samples if s.error is not None][:10]:
        print(f"  error ({sample.kind}): {sample.error}")
    return errors, server_errors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.load", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="how long the clients run (default: 30)")
    parser.add_argument("--clients", type=int, default=20, help="concurrent clients (default: 20)")
    parser.add_argument("--encounters", type=int, default=5000, help="Encounters to seed (default: 5000)")
    parser.add_argument("--random-seed", type=int, default=7, help="the clients' random seed (default: 7)")
    args = parser.parse_args(argv)
    # tests.support composes the functions in this process when it loads: give them their
    # environment first, as the tests do.
    os.environ.update(TEST_ENVIRONMENT)
    from tests.support import start_server, stop_server

    with tempfile.TemporaryDirectory(prefix="fhir-load-serve-") as logs:
        print(f"Starting serve with {args.encounters} Encounters", flush=True)
        server = start_server(Path(logs), "--seed-count", str(args.encounters), "--log-level", "WARNING")
        try:
            clients = [
                Client(server.base_url, args.encounters, random.Random(args.random_seed * 1000 + n))
                for n in range(args.clients)
            ]
            print(f"{args.clients} clients for {args.seconds:.0f} s against {server.base_url}", flush=True)
            started = time.monotonic()
            until = started + args.seconds
            threads = [threading.Thread(target=client.run, args=(until,)) for client in clients]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            elapsed = time.monotonic() - started
        finally:
            status = stop_server(server.process)
        samples = [sample for client in clients for sample in client.samples]
        errors, server_errors = report(samples, elapsed, args.clients, args.encounters)
        print(f"\nserve stopped (exit status {status})")
        if status != 0:
            print(f"serve's log:\n{server.stderr.read_text()[-4000:]}")
            return 1
    return 1 if errors or server_errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
