"""``fhir-encounter load tests/data`` into DynamoDB Local: nothing lost, every rejection reported,
a reload changes nothing. Read back over HTTP through the served API.

tests/data marks each Encounter that must be rejected by an id with ``bad`` in it (an NDJSON line
that is not JSON is rejected too); every other Encounter must load, and other resource types are
skipped and counted. A Bundle's Encounters are expected as the Bundle resolves them (urn:uuid
references through the entries' fullUrl, an entry without an id taking its fullUrl's uuid), as
Synthea's transactions need.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from tests.support import (
    INTEGRATION_DATA,
    INTEGRATION_TABLE,
    ROOT,
    Api,
    CliRun,
    bundle_resources_resolved,
    run_cli,
)

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Expected:
    loaded: dict[str, dict[str, Any]]  # id -> resource, the last one of an id winning
    rejected: dict[str, str | None]  # place ("tests/data/x.ndjson:6") -> id, when it has one
    skipped: int


def expected_outcome() -> Expected:
    """What tests/data holds, read independently of the loader."""
    loaded: dict[str, dict[str, Any]] = {}
    rejected: dict[str, str | None] = {}
    skipped = 0

    def consider(place: str, resource: Any) -> None:
        nonlocal skipped
        if not isinstance(resource, dict) or resource.get("resourceType") != "Encounter":
            skipped += 1
        elif "bad" in str(resource.get("id")):
            rejected[place] = str(resource["id"])
        else:
            loaded[str(resource["id"])] = resource

    for path in sorted((ROOT / INTEGRATION_DATA).rglob("*")):
        place = str(path.relative_to(ROOT))
        if path.suffix == ".ndjson":
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if line.strip():
                    try:
                        resource = json.loads(line)
                    except json.JSONDecodeError:
                        rejected[f"{place}:{number}"] = None
                        continue
                    consider(f"{place}:{number}", resource)
        elif path.suffix == ".json":
            document = json.loads(path.read_text())
            if document.get("resourceType") == "Bundle":
                for index, resource in enumerate(bundle_resources_resolved(document)):
                    consider(f"{place}: entry[{index}]", resource)
            else:
                consider(place, document)
    return Expected(loaded, rejected, skipped)


EXPECTED = expected_outcome()


def content(resource: dict[str, Any]) -> dict[str, Any]:
    """The resource without what the store sets (meta.versionId, meta.lastUpdated)."""
    meta = {k: v for k, v in resource.get("meta", {}).items() if k not in ("versionId", "lastUpdated")}
    return {k: v for k, v in resource.items() if k != "meta"} | ({"meta": meta} if meta else {})


def rejection_lines(run: CliRun) -> list[str]:
    return [line for line in run.stderr.splitlines() if line.startswith("rejected ")]


def reported(run: CliRun, place: str) -> list[str]:
    return [
        line for line in rejection_lines(run) if line.startswith((f"rejected {place} ", f"rejected {place}:"))
    ]


def test_data_has_valid_bad_and_other_records() -> None:
    assert len(EXPECTED.loaded) >= 10
    assert len(EXPECTED.rejected) >= 3
    assert EXPECTED.skipped >= 1


def test_data_has_a_synthea_bundle_whose_encounters_load_resolved() -> None:
    synthea = [r for r in EXPECTED.loaded.values() if "synthetichealth" in json.dumps(r.get("identifier"))]
    assert len(synthea) >= 3
    assert "Patient/syn-pat-1" in {r["subject"]["reference"] for r in synthea}
    assert "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a" in {r["id"] for r in synthea}  # no id: its fullUrl's
    assert not any("urn:uuid:" in json.dumps(r) for r in EXPECTED.loaded.values())


def test_load_exits_1_when_some_were_rejected(first_load: CliRun) -> None:
    assert first_load.status == 1, first_load.stderr
    assert f"loaded {len(EXPECTED.loaded)} " in first_load.stdout
    assert f"rejected {len(EXPECTED.rejected)}, skipped {EXPECTED.skipped} " in first_load.stdout


@pytest.mark.parametrize("place", sorted(EXPECTED.rejected))
def test_each_rejected_record_is_reported_with_file_and_line(first_load: CliRun, place: str) -> None:
    lines = reported(first_load, place)
    assert len(lines) == 1, first_load.stderr
    encounter_id = EXPECTED.rejected[place]
    if encounter_id is not None:
        assert f"(Encounter/{encounter_id})" in lines[0]


def test_nothing_else_is_rejected(first_load: CliRun) -> None:
    assert len(rejection_lines(first_load)) == len(EXPECTED.rejected), first_load.stderr


@pytest.mark.parametrize("encounter_id", sorted(EXPECTED.loaded))
def test_every_valid_encounter_reads_back_equal(api: Api, encounter_id: str) -> None:
    reply = api.read(encounter_id)
    assert reply.status == 200
    resource = reply.body
    assert content(resource) == content(EXPECTED.loaded[encounter_id])
    assert resource["meta"]["versionId"] == "1"
    assert resource["meta"]["lastUpdated"]


@pytest.mark.parametrize("encounter_id", sorted(i for i in EXPECTED.rejected.values() if i))
def test_rejected_encounters_are_not_written(api: Api, encounter_id: str) -> None:
    assert api.read(encounter_id).status == 404


def test_reload_changes_nothing(api: Api, first_load: CliRun, dynamodb_endpoint: str) -> None:
    before = {encounter_id: api.read(encounter_id).body["meta"] for encounter_id in EXPECTED.loaded}
    again = run_cli(
        "load", "--endpoint-url", dynamodb_endpoint, "--table", INTEGRATION_TABLE, str(INTEGRATION_DATA)
    )
    assert again.status == 1
    assert f"(written 0, unchanged {len(EXPECTED.loaded)})" in again.stdout
    assert rejection_lines(again) == rejection_lines(first_load)
    after = {encounter_id: api.read(encounter_id).body["meta"] for encounter_id in EXPECTED.loaded}
    assert after == before
