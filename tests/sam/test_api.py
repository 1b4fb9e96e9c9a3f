"""The API through `sam local start-api` (real Lambda containers, warm) over HTTP, on the seeded
table that `make sam-local` serves: the README's curl examples, full next-link walks, and two
FHIR clients (fhirclient, fhirpy) reading a page and walking ``next``."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from fhirclient import client as fhirclient
from fhirclient.models.encounter import Encounter
from fhirpy import SyncFHIRClient

from fhir_encounter_tools.ingest.seed import SEED, SEED_PATIENT, synthetic_encounters
from fhir_encounter_tools.samlocal.stack import SEED_COUNT
from tests import oracle
from tests.support import ROOT, Api, ids_of, link

README_BASE = "http://127.0.0.1:3000"
SEEDED = list(synthetic_encounters(SEED_COUNT, SEED))
SEED_PATIENT_IDS = sorted(
    resource["id"] for resource in SEEDED if resource["subject"]["reference"] == f"Patient/{SEED_PATIENT}"
)


def readme_curl_commands() -> list[str]:
    """The curl lines of the README's code block after "... going, in another terminal:"."""
    text = (ROOT / "README.md").read_text()
    block = text.split("going, in another terminal:", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    return [line.strip() for line in block.splitlines() if line.strip().startswith("curl ")]


def run_curl(command: str, base_url: str, encounter_id: str) -> tuple[int, dict[str, Any]]:
    """A README curl line against ``base_url`` (the placeholder id replaced): status and body."""
    argv = shlex.split(command.split(" | ")[0].replace(README_BASE, base_url))
    argv = [re.sub(r"<an id from a search>", encounter_id, arg) for arg in argv if arg != "-i"]
    done = subprocess.run(
        [*argv, "--noproxy", "*", "-w", "\n%{http_code}"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    body, _, status = done.stdout.rpartition("\n")
    return int(status), json.loads(body)


def test_the_readme_curl_examples_answer(api: Api) -> None:
    commands = readme_curl_commands()
    assert len(commands) == 11
    first = api.search("patient=patient-0001&_count=1").body
    (encounter_id,) = ids_of(first)
    answers = [run_curl(command, api.base_url, encounter_id) for command in commands]
    assert [status for status, _ in answers] == [200] * 11
    kinds = [body["resourceType"] for _, body in answers]
    assert kinds == ["Bundle"] * 10 + ["Encounter"]
    assert all(body["type"] == "searchset" for _, body in answers[:10])
    patient_page, patient_five, *_, sorted_summary, read = (body for _, body in answers)
    assert all("SUBSETTED" in str(entry["resource"]["meta"]["tag"]) for entry in sorted_summary["entry"])
    assert patient_page["total"] == len(SEED_PATIENT_IDS)  # every one of them starts after 2020
    assert len(patient_five["entry"]) == 5
    assert read["id"] == encounter_id
    # The US Core examples find what the oracle finds in the seeded data, and something.
    stored = [{**resource, "meta": {"lastUpdated": "2026-01-01T00:00:00Z"}} for resource in SEEDED]
    for command, (_, body) in zip(commands[4:9], answers[4:9], strict=True):
        query = urlsplit(shlex.split(command)[2]).query
        expected = oracle.search(stored, parse_qsl(query), base_url=README_BASE)
        assert body["total"] == len(expected) > 0, command
    latest = oracle.search(stored, [("patient", "patient-0001"), ("_sort", "-date")], base_url=README_BASE)
    assert ids_of(sorted_summary) == [resource["id"] for resource in latest][:10]  # the latest first


def test_a_next_link_walk_visits_every_seeded_encounter_once(api: Api) -> None:
    pages = api.walk([("_count", "37")])
    found = [encounter_id for page in pages for encounter_id in ids_of(page)]
    assert len(pages) == -(-SEED_COUNT // 37)
    assert sorted(found) == sorted(resource["id"] for resource in SEEDED)
    assert {page["total"] for page in pages} == {SEED_COUNT}


def test_a_patient_walk_of_small_pages_finds_the_patient_encounters_in_order(api: Api) -> None:
    pages = api.walk([("patient", SEED_PATIENT), ("_count", "3")])
    walked = [encounter_id for page in pages for encounter_id in ids_of(page)]
    assert sorted(walked) == SEED_PATIENT_IDS
    assert walked == ids_of(api.search(f"patient={SEED_PATIENT}&_count=100").body)
    assert link(pages[-1], "next") is None


def test_fhirclient_reads_a_page_and_walks_next(api: Api) -> None:
    smart = fhirclient.FHIRClient(settings={"app_id": "test-sam", "api_base": f"{api.base_url}/"})
    search = Encounter.where(struct={"patient": SEED_PATIENT, "_count": "4"})
    pages = list(search.perform_iter(smart.server))
    assert [len(page.entry) for page in pages[:-1]] == [4] * (len(pages) - 1)
    assert pages[0].total == len(SEED_PATIENT_IDS)
    walked = [entry.resource.id for page in pages for entry in page.entry]
    assert sorted(walked) == SEED_PATIENT_IDS
    assert all(
        entry.resource.subject.reference == f"Patient/{SEED_PATIENT}" for p in pages for entry in p.entry
    )


def test_fhirpy_reads_a_page_and_walks_next(api: Api) -> None:
    client = SyncFHIRClient(api.base_url)
    search = client.resources("Encounter").search(patient=SEED_PATIENT).limit(6)
    first = search.fetch()
    assert len(first) == 6
    walked = [resource["id"] for resource in search.fetch_all()]
    assert sorted(walked) == SEED_PATIENT_IDS
    assert walked[:6] == [resource["id"] for resource in first]


def test_the_start_api_log_holds_no_patient_id(api: Api, work_dir: Path) -> None:
    assert api.search(f"patient={SEED_PATIENT}").status == 200
    text = (work_dir / "start-api.log").read_text()
    assert '"GET /Encounter?... HTTP/1.1" 200' in text
    assert SEED_PATIENT not in text
