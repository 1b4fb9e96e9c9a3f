"""Loading tests/data and other files into a moto table: counts, reasons with their place, idempotent
reloads.

tests/data holds:
- encounters.ndjson: 39 lines, 30 valid Encounters (nd-01 .. nd-30), 2 blank lines and 7 bad ones;
- bundle.json: a transaction Bundle of a Patient (skipped), 3 valid Encounters and 1 without class;
- encounter.json: one valid Encounter (single-01);
- synthea-transaction.json: a transaction Bundle as Synthea writes it (fullUrl urn:uuid:..., every
  reference by urn:uuid) of 2 Patients (one without an id), a Practitioner, an Appointment, a
  Condition, an Observation and a Claim (all skipped), 3 valid Encounters (one without an id) and
  one whose subject is a urn:uuid that no entry has.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from fhir_encounter.search.parameters import value_paths
from fhir_encounter.store import keys
from fhir_encounter.store.dynamodb import UnprocessedError
from fhir_encounter.store.writer import EncounterWriter, WriteResult
from fhir_encounter_tools.ingest import loader
from fhir_encounter_tools.ingest.loader import Rejection, load_paths, load_resources
from fhir_encounter_tools.ingest.validation import MAX_DEPTH
from tests.support import TEST_TABLE, bundle_resources_resolved, encounter, ids_of, search

DATA = Path(__file__).resolve().parents[1] / "data"
NDJSON = DATA / "encounters.ndjson"
BUNDLE = DATA / "bundle.json"
SINGLE = DATA / "encounter.json"
SYNTHEA = DATA / "synthea-transaction.json"
SYNTHEA_NO_ID = "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a"  # the uuid of its fullUrl
SYNTHEA_IDS = ["syn-enc-1", SYNTHEA_NO_ID, "syn-enc-3"]
VALID_IDS = [f"nd-{n:02d}" for n in range(1, 31)] + ["bn-01", "bn-02", "bn-03", "single-01", *SYNTHEA_IDS]
# (place, id, start of the reason), in load order: files sorted, then line or entry order.
REJECTED = [
    (f"{BUNDLE}: entry[3]", "bn-bad", "class: is required"),
    (f"{NDJSON}:6", None, "invalid JSON: "),
    (f"{NDJSON}:19", "bad-status", "status: is not an R4 Encounter status"),
    (f"{NDJSON}:20", "bad-subject", "subject.reference: must refer to Patient or Group"),
    (f"{NDJSON}:28", "bad-date", "period.start: is not a FHIR dateTime"),
    (f"{NDJSON}:35", "bad-order", "period: end is before start"),
    (f"{NDJSON}:39", "bad-appointment", "appointment[1].reference: must refer to Appointment"),
    (
        f"{SYNTHEA}: entry[10]",
        "syn-bad-unresolved",
        "subject.reference: a urn:uuid reference that no entry of the Bundle resolves",
    ),
]


@pytest.fixture
def writer(table: Any) -> EncounterWriter:
    return EncounterWriter(table, TEST_TABLE, value_paths())


def load(*paths: Path, writer: EncounterWriter) -> tuple[loader.LoadReport, list[Rejection]]:
    rejections: list[Rejection] = []
    report = load_paths(list(paths), writer, on_reject=rejections.append)
    return report, rejections


def stored(table: Any, encounter_id: str) -> dict[str, Any]:
    key = {keys.PARTITION_KEY: {"S": encounter_id}, keys.SORT_KEY: {"S": keys.ENCOUNTER_SK}}
    item = table.get_item(TableName=TEST_TABLE, Key=key)["Item"]
    resource: dict[str, Any] = json.loads(item[keys.ATTR_RESOURCE]["S"])
    return resource


def encounter_ids(table: Any) -> set[str]:
    """Every Encounter item's id, read through the period-start index (as search does)."""
    buckets = table.get_item(
        TableName=TEST_TABLE,
        Key={keys.PARTITION_KEY: {"S": keys.META_PK}, keys.SORT_KEY: {"S": keys.BUCKETS_SK}},
    )["Item"][keys.ATTR_BUCKETS]["SS"]
    ids = set()
    for bucket in buckets:
        pages = table.get_paginator("query").paginate(
            TableName=TEST_TABLE,
            IndexName=keys.PERIOD_START_INDEX,
            KeyConditionExpression="#b = :b",
            ExpressionAttributeNames={"#b": keys.ATTR_BUCKET},
            ExpressionAttributeValues={":b": {"S": bucket}},
        )
        ids |= {item[keys.PARTITION_KEY]["S"] for page in pages for item in page["Items"]}
    return ids


def source_encounters() -> dict[str, dict[str, Any]]:
    """The valid Encounters as the files hold them, read without the loader."""
    resources = [
        json.loads(line)
        for line in NDJSON.read_text().splitlines()
        if line.startswith('{"resourceType": "Encounter", "id": "nd-')
    ]
    resources += [entry["resource"] for entry in json.loads(BUNDLE.read_text())["entry"]]
    resources.append(json.loads(SINGLE.read_text()))
    resources += bundle_resources_resolved(json.loads(SYNTHEA.read_text()))
    return {
        resource["id"]: resource
        for resource in resources
        if resource["resourceType"] == "Encounter" and resource["id"] in VALID_IDS
    }


def without_version(resource: dict[str, Any]) -> dict[str, Any]:
    meta = {k: v for k, v in resource.get("meta", {}).items() if k not in ("versionId", "lastUpdated")}
    body = {k: v for k, v in resource.items() if k != "meta"}
    return {**body, "meta": meta} if meta else body


def test_the_data_directory_loads_the_valid_rejects_the_bad_and_skips_the_patient(
    writer: EncounterWriter, table: Any
) -> None:
    report, _ = load(DATA, writer=writer)
    assert (report.written, report.unchanged, report.rejected, report.skipped) == (37, 0, 8, 9)
    assert report.loaded == 37
    assert encounter_ids(table) == set(VALID_IDS)


def test_each_rejection_names_its_file_line_or_entry_id_and_field(writer: EncounterWriter) -> None:
    _, rejections = load(DATA, writer=writer)
    assert [(r.where, r.encounter_id) for r in rejections] == [(where, i) for where, i, _ in REJECTED]
    for rejection, (_, _, reason) in zip(rejections, REJECTED, strict=True):
        assert rejection.reason.startswith(reason)
    assert str(rejections[2]) == (
        f"{NDJSON}:19 (Encounter/bad-status): status: is not an R4 Encounter status "
        "(planned, arrived, triaged, in-progress, onleave, finished, cancelled, entered-in-error, unknown)"
    )


def test_every_valid_encounter_reads_back_equal_in_content(writer: EncounterWriter, table: Any) -> None:
    load(DATA, writer=writer)
    sources = source_encounters()
    assert sorted(sources) == sorted(VALID_IDS)
    for encounter_id, source in sources.items():
        back = stored(table, encounter_id)
        assert without_version(back) == without_version(source), encounter_id
        assert back["meta"]["versionId"] == "1"


def test_extra_elements_and_meta_are_kept(writer: EncounterWriter, table: Any) -> None:
    load(NDJSON, writer=writer)
    back = stored(table, "nd-27")
    assert back["extension"] == [
        {"url": "https://example.org/fhir/StructureDefinition/visit-kind", "valueString": "walk-in"}
    ]
    assert back["meta"]["profile"] == ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-encounter"]
    assert back["meta"]["versionId"] == "1"  # the loader's version, not the file's "9"


def test_a_reload_changes_nothing(writer: EncounterWriter, table: Any) -> None:
    load(DATA, writer=writer)
    first = {i: stored(table, i)["meta"] for i in VALID_IDS}
    report, _ = load(DATA, writer=writer)
    assert (report.written, report.unchanged, report.rejected, report.skipped) == (0, 37, 8, 9)
    assert {i: stored(table, i)["meta"] for i in VALID_IDS} == first


def test_a_changed_encounter_gets_version_2_and_the_others_keep_1(
    writer: EncounterWriter, table: Any, tmp_path: Path
) -> None:
    load(DATA, writer=writer)
    changed = json.loads(SINGLE.read_text())
    changed["status"] = "cancelled"
    path = tmp_path / "changed.json"
    path.write_text(json.dumps(changed))
    report, _ = load(path, NDJSON, writer=writer)
    assert (report.written, report.unchanged) == (1, 30)
    assert stored(table, "single-01")["meta"]["versionId"] == "2"
    assert stored(table, "single-01")["status"] == "cancelled"
    assert stored(table, "nd-01")["meta"]["versionId"] == "1"


def test_the_first_encounter_with_an_id_wins_and_later_ones_are_rejected(
    writer: EncounterWriter, table: Any, tmp_path: Path
) -> None:
    first, second = tmp_path / "a.ndjson", tmp_path / "b.json"
    lines = [encounter("dup", status="planned"), encounter("other"), encounter("dup", status="finished")]
    first.write_text("\n".join(json.dumps(line) for line in lines))
    second.write_text(json.dumps(encounter("dup", status="cancelled")))
    report, rejections = load(first, second, writer=writer)
    assert (report.written, report.unchanged, report.rejected) == (2, 0, 2)
    assert [(r.where, r.encounter_id, r.reason) for r in rejections] == [
        (f"{first}:3", "dup", f"duplicate id: first seen at {first}:1"),
        (str(second), "dup", f"duplicate id: first seen at {first}:1"),
    ]
    assert stored(table, "dup")["status"] == "planned"
    assert stored(table, "dup")["meta"]["versionId"] == "1"


def test_a_reload_of_a_file_with_a_repeated_id_changes_nothing(
    writer: EncounterWriter, table: Any, tmp_path: Path
) -> None:
    path = tmp_path / "twice.ndjson"
    lines = [encounter("dup", status="planned"), encounter("dup", status="finished")]
    path.write_text("\n".join(json.dumps(line) for line in lines))
    load(path, writer=writer)
    for _ in range(2):
        report, _ = load(path, writer=writer)
        assert (report.written, report.unchanged, report.rejected) == (0, 1, 1)
        assert stored(table, "dup")["meta"]["versionId"] == "1"


def test_an_invalid_first_occurrence_does_not_hold_its_id(
    writer: EncounterWriter, table: Any, tmp_path: Path
) -> None:
    path = tmp_path / "fixed.ndjson"
    lines = [encounter("e1", status="done"), encounter("e1", status="planned")]
    path.write_text("\n".join(json.dumps(line) for line in lines))
    report, rejections = load(path, writer=writer)
    assert (report.written, report.rejected) == (1, 1)
    assert rejections[0].where == f"{path}:1"
    assert stored(table, "e1")["status"] == "planned"


def test_a_bad_json_line_is_rejected_and_the_rest_loads(writer: EncounterWriter, tmp_path: Path) -> None:
    path = tmp_path / "broken.ndjson"
    path.write_bytes(
        b'{"resourceType": "Encounter"\n\xff\xfe\n[1, 2]\n' + json.dumps(encounter("ok")).encode()
    )
    report, rejections = load(path, writer=writer)
    assert (report.written, report.rejected) == (1, 3)
    assert [(r.where, r.reason) for r in rejections] == [
        (f"{path}:1", "invalid JSON: Expecting ',' delimiter at column 29"),
        (f"{path}:2", "not UTF-8 text"),
        (f"{path}:3", "not a FHIR resource (a JSON object)"),
    ]


def test_a_json_file_that_is_not_json_is_one_rejection_with_its_line(
    writer: EncounterWriter, tmp_path: Path
) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{\n  "resourceType": "Encounter",\n  "id": \n}\n')
    report, rejections = load(path, writer=writer)
    assert (report.loaded, report.rejected) == (0, 1)
    assert rejections[0].where == f"{path}:4"
    assert rejections[0].reason.startswith("invalid JSON: Expecting value")


@pytest.mark.parametrize(
    ("document", "counts"),
    [
        ({"resourceType": "Patient", "id": "p1"}, (0, 0, 1)),
        ({"resourceType": "Bundle", "type": "searchset", "entry": []}, (0, 0, 0)),
        (
            {"resourceType": "Bundle", "type": "batch", "entry": [{"request": {"method": "DELETE"}}]},
            (0, 0, 1),
        ),
        ({"resourceType": "Bundle", "type": "collection", "entry": "x"}, (0, 1, 0)),
        (
            {"resourceType": "Bundle", "type": "collection", "entry": [7, {"resource": {"id": "e"}}]},
            (0, 2, 0),
        ),
        ({"resourceType": "Bundle", "type": "document", "entry": [{"resource": encounter("b1")}]}, (1, 0, 0)),
        ({"id": "no-type"}, (0, 1, 0)),
    ],
)
def test_json_documents_load_their_encounters_and_skip_other_resources(
    writer: EncounterWriter, tmp_path: Path, document: dict[str, Any], counts: tuple[int, int, int]
) -> None:
    path = tmp_path / "document.json"
    path.write_text(json.dumps(document))
    report, _ = load(path, writer=writer)
    assert (report.loaded, report.rejected, report.skipped) == counts


def refuse_locked_files(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reading a file whose name starts with ``locked`` fails as an unreadable file does."""
    for name in ("open", "read_bytes"):
        original = getattr(Path, name)

        def read(self: Path, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            if self.name.startswith("locked"):
                raise PermissionError(13, "Permission denied")
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(Path, name, read)


@pytest.mark.parametrize("name", ["locked.ndjson", "locked.json"])
def test_an_unreadable_file_is_reported_and_the_files_around_it_load(
    writer: EncounterWriter, table: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    before, locked, after = tmp_path / "a.ndjson", tmp_path / name, tmp_path / "z.json"
    before.write_text(json.dumps(encounter("e1")))  # fewer than a batch: still pending at the failure
    locked.write_text(json.dumps(encounter("e2")))
    after.write_text(json.dumps(encounter("e3")))
    refuse_locked_files(monkeypatch)
    report, rejections = load(before, locked, after, writer=writer)
    assert (report.written, report.rejected, report.unreadable) == (2, 0, 1)
    assert [str(r) for r in rejections] == [f"{locked}: cannot read (Permission denied)"]
    assert encounter_ids(table) == {"e1", "e3"}


def test_a_read_error_midway_keeps_the_lines_read_before_it(
    writer: EncounterWriter, table: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "failing.ndjson"
    path.write_text("\n".join(json.dumps(encounter(f"e{n}")) for n in range(3)))
    original = Path.open

    def failing_after_two_lines(self: Path, *args: Any, **kwargs: Any) -> Any:
        lines = original(self, *args, **kwargs).readlines()

        class Handle(io.BytesIO):
            def __iter__(self) -> Any:
                yield from lines[:2]
                raise OSError(5, "Input/output error")

        return Handle()

    monkeypatch.setattr(Path, "open", failing_after_two_lines)
    report, rejections = load(path, writer=writer)
    assert (report.written, report.unreadable) == (2, 1)
    assert [str(r) for r in rejections] == [f"{path}: cannot read (Input/output error)"]
    assert encounter_ids(table) == {"e0", "e1"}


def test_the_report_tells_what_was_written_when_writing_fails_midway(table: Any) -> None:
    class FailingWriter(EncounterWriter):
        def write(self, resources: Iterable[dict[str, Any]]) -> WriteResult:
            if self.calls:
                raise UnprocessedError("DynamoDB left items unprocessed after every retry")
            self.calls += 1
            return super().write(resources)

        calls = 0

    report = loader.LoadReport()
    with pytest.raises(UnprocessedError):
        load_resources(
            (encounter(f"e{n}") for n in range(250)),
            FailingWriter(table, TEST_TABLE, value_paths()),
            source="t",
            report=report,
        )
    assert (report.written, report.loaded) == (loader.BATCH_SIZE, loader.BATCH_SIZE)
    assert report.seconds > 0


@pytest.mark.parametrize(
    ("name", "text", "where"),
    [
        ("deep.ndjson", "[" * 200_000, ":1"),
        ("deep.json", "[" * 200_000, ""),
        ("deep-closed.ndjson", "[" * 200_000 + "]" * 200_000, ":1"),
    ],
)
def test_json_nested_too_deeply_is_a_rejection(
    writer: EncounterWriter, tmp_path: Path, name: str, text: str, where: str
) -> None:
    path = tmp_path / name
    path.write_text(text)
    report, rejections = load(path, writer=writer)
    assert report.rejected == 1
    assert [(r.where, r.reason) for r in rejections] == [
        (f"{path}{where}", f"invalid JSON: nested too deeply (more than {MAX_DEPTH} levels)")
    ]


def test_an_encounter_too_large_for_an_item_is_rejected_and_the_rest_is_written(
    writer: EncounterWriter, table: Any, tmp_path: Path
) -> None:
    path = tmp_path / "large.ndjson"
    large = {**encounter("large"), "text": {"status": "generated", "div": "x" * 400_000}}
    path.write_text("\n".join(json.dumps(line) for line in (encounter("e1"), large, encounter("e2"))))
    report, rejections = load(path, writer=writer)
    assert (report.written, report.rejected) == (2, 1)
    assert str(rejections[0]).startswith(f"{path}:2 (Encounter/large): too large: ")
    assert encounter_ids(table) == {"e1", "e2"}


def test_nan_and_a_lone_surrogate_are_rejected_with_their_line(
    writer: EncounterWriter, tmp_path: Path
) -> None:
    path = tmp_path / "invalid.ndjson"
    nan = json.dumps(encounter("nan")).replace('"status"', '"length": {"value": NaN}, "status"')
    surrogate = json.dumps(encounter("surrogate")).replace('"status"', '"note": "\\ud800", "status"')
    path.write_text(f"{nan}\n{surrogate}\n")
    report, rejections = load(path, writer=writer)
    assert report.rejected == 2
    assert [(r.where, r.reason.split(",")[0]) for r in rejections] == [
        (f"{path}:1", "invalid JSON: a number is NaN or Infinity"),
        (f"{path}:2", "invalid JSON: a string holds a lone surrogate (\\ud800-\\udfff)"),
    ]


def test_encounters_are_written_in_batches_not_all_at_once(table: Any) -> None:
    sizes: list[int] = []

    class CountingWriter(EncounterWriter):
        def write(self, resources: Iterable[dict[str, Any]]) -> WriteResult:
            batch = list(resources)
            sizes.append(len(batch))
            return super().write(batch)

    writer = CountingWriter(table, TEST_TABLE, value_paths())
    report = load_resources((encounter(f"e{n}") for n in range(250)), writer, source="test")
    assert report.written == 250
    assert sizes == [loader.BATCH_SIZE, loader.BATCH_SIZE, 250 - 2 * loader.BATCH_SIZE]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("stream", "drawn"), [(Terminal(), True), (io.StringIO(), False)])
def test_a_progress_bar_is_drawn_only_on_a_terminal(
    writer: EncounterWriter, stream: io.StringIO, drawn: bool
) -> None:
    load_resources([encounter("e1"), encounter("e2")], writer, source="test", total=2, progress=stream)
    text = stream.getvalue()
    assert ("\r[" in text and "loaded" in text) is drawn
    assert text.endswith("\r\x1b[K") is drawn  # the bar is cleared before the summary is printed


# ---- one record never loses the records around it --------------------------------------------------

HUGE = "7" * 5000  # more digits than Python converts (4300 by default)


def with_member(resource: dict[str, Any], member: str) -> str:
    """The resource's JSON text with ``member`` (JSON text, e.g. ``"a": 1``) added at its end."""
    return json.dumps(resource)[:-1] + ", " + member + "}"


def test_a_huge_number_in_one_file_rejects_that_encounter_and_every_other_file_loads(
    writer: EncounterWriter, table: Any, tmp_path: Path
) -> None:
    first, bad, last = tmp_path / "a.ndjson", tmp_path / "b.json", tmp_path / "c.ndjson"
    first.write_text("\n".join(json.dumps(encounter(f"a{n}")) for n in range(3)))
    bad.write_text(with_member(encounter("b1"), f'"length": {{"value": {HUGE}}}'))
    last.write_text("\n".join(json.dumps(encounter(f"c{n}")) for n in range(3)))
    report, rejections = load(tmp_path, writer=writer)
    assert (report.written, report.rejected, report.unreadable) == (6, 1, 0)
    assert [str(r) for r in rejections] == [
        f"{bad} (Encounter/b1): invalid JSON: a number has more than 4300 digits (at length.value)"
    ]
    assert encounter_ids(table) == {"a0", "a1", "a2", "c0", "c1", "c2"}


# A line of each kind that fails when JSON is read, and the start of its reason.
BAD_LINES = [
    (with_member(encounter("x"), f'"length": {{"value": {HUGE}}}'), "a number has more than 4300 digits"),
    (with_member(encounter("x"), '"length": {"value": 1e999}'), "a number is beyond the range of a 64-bit"),
    (with_member(encounter("x"), f'"length": {{"value": 0.{HUGE}}}'), "a number has more digits than a 64"),
    (with_member(encounter("x"), '"length": {"value": NaN}'), "a number is NaN or Infinity"),
    (with_member(encounter("x"), '"length": {"value": -Infinity}'), "a number is NaN or Infinity"),
    (with_member(encounter("x"), '"id": "y"'), '"id" occurs twice in one object, so its value is ambiguous'),
    (with_member(encounter("x"), '"note": [{"text": "a", "text": "b"}]'), '"text" occurs twice in one obj'),
    (with_member(encounter("x"), '"note": "\\udc00"'), "a string holds a lone surrogate"),
    (with_member(encounter("x"), '"note": ' + "[" * 500 + "]" * 500), "nested too deeply"),
    ("[" * 100_000, "nested too deeply"),
    ('{"resourceType": "Encounter", "id": "x", "status": ', "Expecting value"),
]


@pytest.mark.parametrize(("line", "reason"), BAD_LINES, ids=[reason for _, reason in BAD_LINES])
def test_a_line_that_fails_when_read_is_rejected_with_its_line_and_the_lines_around_it_load(
    writer: EncounterWriter, table: Any, tmp_path: Path, line: str, reason: str
) -> None:
    path = tmp_path / "mixed.ndjson"
    path.write_text("\n".join([json.dumps(encounter("before")), line, json.dumps(encounter("after"))]))
    report, rejections = load(path, writer=writer)
    assert (report.written, report.rejected) == (2, 1)
    assert [r.where for r in rejections] == [f"{path}:2"]
    assert rejections[0].reason.startswith(f"invalid JSON: {reason}")
    assert rejections[0].encounter_id in ("x", None)  # None: not JSON, or the id itself is ambiguous
    assert "777777" not in rejections[0].reason
    assert encounter_ids(table) == {"before", "after"}


def test_an_encounter_with_two_ids_is_rejected_and_neither_is_written_or_named(
    writer: EncounterWriter, table: Any, tmp_path: Path
) -> None:
    path = tmp_path / "twice.ndjson"
    path.write_text(with_member(encounter("a"), '"id": "b"') + "\n" + json.dumps(encounter("c")))
    report, rejections = load(path, writer=writer)
    assert (report.written, report.rejected) == (1, 1)
    assert [str(r) for r in rejections] == [
        f'{path}:1: invalid JSON: "id" occurs twice in one object, so its value is ambiguous'
    ]
    assert encounter_ids(table) == {"c"}


def test_invalid_utf8_in_a_json_file_is_one_rejection_with_its_line_and_other_files_load(
    writer: EncounterWriter, table: Any, tmp_path: Path
) -> None:
    bad, good = tmp_path / "a.json", tmp_path / "b.ndjson"
    bad.write_bytes(b'{\n  "resourceType": "Encounter",\n  "id": "\xff"\n}')
    good.write_text(json.dumps(encounter("e1")))
    report, rejections = load(tmp_path, writer=writer)
    assert (report.written, report.rejected) == (1, 1)
    assert [str(r) for r in rejections] == [f"{bad}:3: not UTF-8 text"]
    assert encounter_ids(table) == {"e1"}


def test_a_bad_value_in_one_bundle_entry_rejects_that_entry_only(
    writer: EncounterWriter, table: Any, tmp_path: Path
) -> None:
    path = tmp_path / "bundle.json"
    entries = [
        '{"resource": ' + json.dumps(encounter("e1")) + "}",
        '{"resource": ' + with_member(encounter("e2"), f'"length": {{"value": {HUGE}}}') + "}",
        '{"resource": ' + with_member(encounter("e3"), '"status": "cancelled"') + "}",
        '{"resource": ' + json.dumps(encounter("e4")) + ', "resource": ' + json.dumps(encounter("e5")) + "}",
        '{"resource": ' + with_member({"resourceType": "Patient", "id": "p"}, '"x": NaN') + "}",
        '{"resource": ' + json.dumps(encounter("e6")) + "}",
    ]
    path.write_text('{"resourceType": "Bundle", "type": "collection", "entry": [' + ", ".join(entries) + "]}")
    report, rejections = load(path, writer=writer)
    assert (report.written, report.rejected, report.skipped) == (2, 3, 1)
    assert [(r.where, r.encounter_id, r.reason.split(",")[0]) for r in rejections] == [
        (f"{path}: entry[1]", "e2", "invalid JSON: a number has more than 4300 digits (at length.value)"),
        (f"{path}: entry[2]", "e3", 'invalid JSON: "status" occurs twice in one object'),
        (f"{path}: entry[3]", None, 'invalid JSON: "resource" occurs twice in one object'),
    ]
    assert encounter_ids(table) == {"e1", "e6"}


@pytest.mark.parametrize(
    "document",
    [
        '{"resourceType": "Bundle", "type": "collection", "entry": [], "entry": [{"resource": %s}]}',
        '{"resourceType": "Bundle", "resourceType": "Encounter", "entry": [{"resource": %s}]}',
        '{"resourceType": "Patient", "id": "p", "resourceType": "Encounter", "x": [{"resource": %s}]}',
    ],
)
def test_a_document_whose_type_or_entries_are_ambiguous_is_rejected_whole(
    writer: EncounterWriter, tmp_path: Path, document: str
) -> None:
    path = tmp_path / "ambiguous.json"
    path.write_text(document % json.dumps(encounter("e1")))
    report, rejections = load(path, writer=writer)
    assert (report.loaded, report.rejected, report.skipped) == (0, 1, 0)
    assert rejections[0].where == str(path)
    assert rejections[0].reason.startswith("invalid JSON: ")
    assert rejections[0].reason.endswith(" occurs twice in one object, so its value is ambiguous")


def test_an_encounter_nested_to_the_limit_loads_and_reads_back_equal(
    writer: EncounterWriter, table: Any, tmp_path: Path
) -> None:
    deep: list[Any] = []
    for _ in range(MAX_DEPTH - 2):  # the resource and its "note" array are two levels
        deep = [deep]
    resource = {**encounter("deep"), "note": deep}
    path = tmp_path / "deep.ndjson"
    path.write_text(json.dumps(resource))
    report, rejections = load(path, writer=writer)
    assert (report.written, rejections) == (1, [])
    assert without_version(stored(table, "deep")) == resource


# ---- Synthea-style transaction Bundles: urn:uuid references resolved through fullUrl -------------


def test_a_synthea_transaction_loads_its_encounters_with_references_resolved(
    writer: EncounterWriter, table: Any
) -> None:
    report, _ = load(SYNTHEA, writer=writer)
    assert (report.written, report.rejected, report.skipped) == (3, 1, 7)
    assert encounter_ids(table) == set(SYNTHEA_IDS)
    first = stored(table, "syn-enc-1")
    assert first["subject"] == {"reference": "Patient/syn-pat-1", "display": "Mr. Alden Smith"}
    assert first["appointment"] == [{"reference": "Appointment/syn-appt-1"}]
    assert first["participant"][0]["individual"]["reference"] == (
        "Practitioner/0000016d-3a85-4cca-0000-000000000a3c"
    )
    assert first["serviceProvider"]["reference"].startswith("Organization?identifier=")  # not a urn:uuid
    without_id = stored(table, SYNTHEA_NO_ID)
    assert without_id["id"] == SYNTHEA_NO_ID
    assert without_id["subject"]["reference"] == "Patient/b426b062-8273-4b93-a907-de3176c0567d"
    assert "urn:uuid:" not in json.dumps([stored(table, i) for i in SYNTHEA_IDS])


def test_a_synthea_encounter_reads_back_as_the_bundle_resolves_it(
    writer: EncounterWriter, table: Any
) -> None:
    load(SYNTHEA, writer=writer)
    expected = {
        resource["id"]: resource
        for resource in bundle_resources_resolved(json.loads(SYNTHEA.read_text()))
        if resource["resourceType"] == "Encounter" and resource["id"] in SYNTHEA_IDS
    }
    assert sorted(expected) == sorted(SYNTHEA_IDS)
    for encounter_id, resource in expected.items():
        assert without_version(stored(table, encounter_id)) == resource, encounter_id


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("patient=syn-pat-1", ["syn-enc-1", "syn-enc-3"]),
        ("patient=Patient/b426b062-8273-4b93-a907-de3176c0567d", [SYNTHEA_NO_ID]),
        ("appointment=syn-appt-1", ["syn-enc-1"]),
        ("patient=5cbc121b-cd71-4428-b8b7-31e53eba8184", []),  # the fullUrl's uuid is not the id
    ],
)
def test_synthea_encounters_are_found_by_the_resolved_references(
    writer: EncounterWriter, query: str, expected: list[str]
) -> None:
    load(SYNTHEA, writer=writer)
    status, _, bundle = search(query)
    assert status == 200
    assert ids_of(bundle) == expected


def test_the_synthea_encounter_whose_subject_no_entry_resolves_is_rejected_without_its_value(
    writer: EncounterWriter,
) -> None:
    _, rejections = load(SYNTHEA, writer=writer)
    assert [str(r) for r in rejections] == [
        f"{SYNTHEA}: entry[10] (Encounter/syn-bad-unresolved): subject.reference: a urn:uuid reference "
        "that no entry of the Bundle resolves (none has it as its fullUrl, with a resource type and id)"
    ]


def bundle_of(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "transaction", "entry": list(entries)}


PATIENT_URL = "urn:uuid:11111111-2222-4333-8444-555555555555"
OTHER_URL = "urn:uuid:66666666-7777-4888-9999-000000000000"


@pytest.mark.parametrize(
    ("entries", "reason"),
    [
        (  # a urn:uuid that two entries have: which one is meant is ambiguous
            [
                {"fullUrl": PATIENT_URL, "resource": {"resourceType": "Patient", "id": "p1"}},
                {"fullUrl": PATIENT_URL, "resource": {"resourceType": "Patient", "id": "p2"}},
            ],
            "subject.reference: a urn:uuid reference that no entry of the Bundle resolves",
        ),
        (
            [{"fullUrl": PATIENT_URL, "resource": {"resourceType": "Patient", "id": "not an id"}}],
            "subject.reference: a urn:uuid reference that no entry of the Bundle resolves",
        ),
        (
            [{"fullUrl": PATIENT_URL, "request": {"method": "DELETE"}}],
            "subject.reference: a urn:uuid reference that no entry of the Bundle resolves",
        ),
        (
            [{"fullUrl": PATIENT_URL, "resource": {"resourceType": "Practitioner", "id": "d1"}}],
            "subject.reference: must refer to Patient or Group",
        ),
    ],
)
def test_a_urn_uuid_subject_that_no_entry_resolves_rejects_the_encounter(
    writer: EncounterWriter, tmp_path: Path, entries: list[dict[str, Any]], reason: str
) -> None:
    path = tmp_path / "bundle.json"
    resource = encounter("e1", subject=PATIENT_URL)
    path.write_text(json.dumps(bundle_of(*entries, {"fullUrl": OTHER_URL, "resource": resource})))
    report, rejections = load(path, writer=writer)
    assert (report.loaded, report.rejected) == (0, 1)
    assert rejections[0].reason.startswith(reason)
    assert PATIENT_URL[9:] not in rejections[0].reason


def test_a_urn_uuid_anywhere_in_an_encounter_must_resolve(writer: EncounterWriter, tmp_path: Path) -> None:
    path = tmp_path / "bundle.json"
    resource = {**encounter("e1"), "diagnosis": [{"condition": {"reference": OTHER_URL}}]}
    path.write_text(json.dumps(bundle_of({"resource": resource})))
    report, rejections = load(path, writer=writer)
    assert (report.loaded, report.rejected) == (0, 1)
    assert rejections[0].reason.startswith(
        "diagnosis[0].condition.reference: a urn:uuid reference that no entry of the Bundle resolves"
    )


def test_an_encounter_without_an_id_or_a_urn_uuid_full_url_is_rejected(
    writer: EncounterWriter, tmp_path: Path
) -> None:
    path = tmp_path / "bundle.json"
    resource = {k: v for k, v in encounter("e1").items() if k != "id"}
    entries: list[dict[str, Any]] = [
        {"fullUrl": "https://ehr.example.org/fhir/Encounter/e1", "resource": resource},
        {"fullUrl": "urn:uuid:not-a-uuid", "resource": resource},
        {"resource": resource},
    ]
    path.write_text(json.dumps(bundle_of(*entries)))
    report, rejections = load(path, writer=writer)
    assert (report.loaded, report.rejected) == (0, 3)
    assert {r.reason for r in rejections} == {"id: is required"}


# ---- symbolic links ------------------------------------------------------------------------------


def test_a_symlink_loop_in_a_directory_is_reported_and_the_other_files_load(
    writer: EncounterWriter, table: Any, tmp_path: Path
) -> None:
    (tmp_path / "a.ndjson").write_text(json.dumps(encounter("e1")))
    (tmp_path / "loop.json").symlink_to(tmp_path / "loop.json")
    (tmp_path / "z.json").write_text(json.dumps(encounter("e2")))
    report, rejections = load(tmp_path, writer=writer)
    assert (report.written, report.unreadable) == (2, 1)
    assert [str(r) for r in rejections] == [f"{tmp_path / 'loop.json'}: cannot read (symlink loop)"]
    assert encounter_ids(table) == {"e1", "e2"}


def test_a_dangling_symlink_in_a_directory_is_reported(writer: EncounterWriter, tmp_path: Path) -> None:
    (tmp_path / "a.ndjson").write_text(json.dumps(encounter("e1")))
    (tmp_path / "gone.ndjson").symlink_to(tmp_path / "missing.ndjson")
    report, rejections = load(tmp_path, writer=writer)
    assert (report.written, report.unreadable) == (1, 1)
    assert [str(r) for r in rejections] == [
        f"{tmp_path / 'gone.ndjson'}: cannot read (No such file or directory)"
    ]
