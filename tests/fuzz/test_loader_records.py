"""Random Encounters through validation and the loader (moto): mostly valid resources with random
mutations (wrong types, missing required elements, odd dates and references, huge numbers, deep
nesting, any Unicode), and raw-text damage (duplicate keys, huge integer literals, NaN, invalid
UTF-8, trailing garbage), written as NDJSON lines and .json files.

The property: every record is either written and reads back equal (the stored resource without
meta.versionId and meta.lastUpdated is the input), or rejected with its place and a reason, or
skipped as another resource type; the report's counts add up; nothing raises out of the load.
Where the outcome is certain (a clean Encounter must load; a damaged record must not), it is checked
too.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal

from hypothesis import example, given
from hypothesis import strategies as st

from fhir_encounter.search.parameters import value_paths
from fhir_encounter.store import keys
from fhir_encounter.store.writer import EncounterWriter
from fhir_encounter_tools.ingest.loader import Rejection, load_paths
from tests.support import TEST_TABLE

Expect = Literal["load", "reject", "either"]
R4_STATUSES = [
    "planned",
    "arrived",
    "triaged",
    "in-progress",
    "onleave",
    "finished",
    "cancelled",
    "entered-in-error",
    "unknown",
]
STORE_META = ("versionId", "lastUpdated")


@dataclass
class Record:
    """One resource as written to a file, and what a correct loader must do with it."""

    resource: dict[str, Any]
    expect: Expect = "load"
    damage: list[str] = field(default_factory=list)  # raw-text mutations to apply
    pretty: bool = False  # indented (a .json file only)
    ascii_only: bool = True


# ---- valid Encounters ---------------------------------------------------------------------------

ID_CHARACTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-."
fhir_ids = st.one_of(
    st.sampled_from(["e1", "e2", "e3"]),  # the same id again in one load
    st.text(ID_CHARACTERS, min_size=1, max_size=64),
)
unicode_text = st.text(st.characters(codec="utf-8"), max_size=30)
tricky_text = st.text(
    st.one_of(
        st.characters(codec="utf-8"), st.sampled_from('\u202e\u200f\u2028\u2029\x00\x85\ufeff"\\\n\r\t')
    ),
    max_size=30,
)
json_values: st.SearchStrategy[Any] = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(10**30), 10**30),
        st.floats(allow_nan=False, allow_infinity=False),
        tricky_text,
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(tricky_text, children, max_size=4)
    ),
    max_leaves=8,
)
moments = st.datetimes(min_value=datetime(1800, 1, 1), max_value=datetime(2200, 1, 1)).map(
    lambda moment: moment.replace(tzinfo=UTC)
)
zones = st.sampled_from(
    [
        UTC,
        timezone(timedelta(hours=14)),
        timezone(timedelta(hours=-12)),
        timezone(timedelta(hours=5, minutes=30)),
    ]
)


def fhir_date_time(moment: datetime, precision: str, zone: timezone) -> str:
    """``moment`` at a FHIR precision; dates without a zone are in UTC (so their range holds it)."""
    match precision:
        case "year":
            return f"{moment.year:04d}"
        case "month":
            return f"{moment.year:04d}-{moment.month:02d}"
        case "day":
            return f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
        case _:
            local = moment.astimezone(zone)
            text = local.strftime("%Y-%m-%dT%H:%M:%S")
            if precision == "fraction":
                text += f".{local.microsecond:06d}"
            offset = local.strftime("%z")
            return text + ("Z" if offset == "+0000" else f"{offset[:3]}:{offset[3:]}")


precisions = st.sampled_from(["year", "month", "day", "seconds", "fraction"])


@st.composite
def periods(draw: st.DrawFn) -> dict[str, str]:
    """A period whose end is not before its start (each at its own precision)."""
    start = draw(moments)
    end = start + draw(st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=400)))
    period = {
        "start": fhir_date_time(start, draw(precisions), draw(zones)),
        "end": fhir_date_time(end, draw(precisions), draw(zones)),
    }
    keep = draw(st.sampled_from(["both", "start", "end"]))
    return period if keep == "both" else {keep: period[keep]}


def reference_to(kinds: list[str]) -> st.SearchStrategy[str]:
    return st.builds(
        lambda form, kind, ident: form.format(type=kind, id=ident),
        st.sampled_from(["{type}/{id}", "https://fhir.example.org/r4/{type}/{id}"]),
        st.sampled_from(kinds),
        fhir_ids,
    )


EXTRA_NAMES = ["identifier", "type", "priority", "reasonCode", "text", "extension", "note", "length"]
# Elements the model checks (or the store rewrites): extra elements never take these names.
MODELLED = ["resourceType", "id", "status", "class", "subject", "period", "appointment", "meta"]
REQUIRED = MODELLED[:4]


@st.composite
def valid_encounters(draw: st.DrawFn) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Encounter",
        "id": draw(fhir_ids),
        "status": draw(st.sampled_from(R4_STATUSES)),
        "class": {
            "system": draw(st.sampled_from(["http://terminology.hl7.org/CodeSystem/v3-ActCode", "urn:x"])),
            "code": draw(st.text(min_size=1, max_size=10)),
        },
    }
    if draw(st.booleans()):
        resource["class"]["display"] = draw(unicode_text)
    if draw(st.booleans()):
        resource["subject"] = {"reference": draw(reference_to(["Patient", "Group"]))}
    if draw(st.booleans()):
        resource["period"] = draw(periods())
    if draw(st.booleans()):
        resource["appointment"] = [
            {"reference": reference}
            for reference in draw(st.lists(reference_to(["Appointment"]), max_size=3))
        ]
    for name in draw(st.lists(st.one_of(st.sampled_from(EXTRA_NAMES), tricky_text), max_size=3)):
        if name not in MODELLED:
            resource[name] = draw(json_values)
    if draw(st.booleans()):  # the file's own version: the store replaces it
        resource["meta"] = {"versionId": "9", "lastUpdated": "2020-01-01T00:00:00Z"}
        if draw(st.booleans()):
            resource["meta"]["profile"] = [
                "http://hl7.org/fhir/us/core/StructureDefinition/us-core-encounter"
            ]
    return resource


# ---- mutations ----------------------------------------------------------------------------------

odd_dates = st.one_of(
    st.sampled_from(
        [
            "2021-02-30",
            "2021-13",
            "0000",
            "2021-06-15T24:00:00Z",
            "2021-06-15T10:30Z",
            "2021-06-15T10:30:60Z",
            "2021-06-15T10:30:00+14:01",
            "2021-06-15T10:30:00",
            "20210615",
            "-2021",
            "2021-06-15T10:30:00.Z",
            "9999-12-31T23:59:59-14:00",
            "0001-01-01T00:00:00+14:00",
            "٢٠٢١",
        ]
    ),
    tricky_text,
)
odd_references = st.one_of(
    st.sampled_from(
        [
            "Patient/",
            "/Patient/1",
            "Patient/1/_history/2",
            "urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0",
            "#contained",
            "Practitioner/1",
            "Patient/x_y",
            "http://example.org/Patient/" + "x" * 65,
            "",
        ]
    ),
    tricky_text,
)


@st.composite
def mutated(draw: st.DrawFn, resource: dict[str, Any]) -> Record:
    """The resource after 0 to 3 random mutations, and what must become of it."""
    record = Record(resource, pretty=draw(st.booleans()), ascii_only=draw(st.booleans()))
    dropped: set[str] = set()
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(
            st.sampled_from(
                [
                    "drop",
                    "retype",
                    "date",
                    "reference",
                    "huge",
                    "deep",
                    "unicode",
                    "surrogate",
                    "other-type",
                    "big",
                ]
            )
        )
        if kind == "drop":
            name = draw(st.sampled_from(REQUIRED))
            dropped.add(name)
            if resource.pop(name, None) is not None:
                record.expect = "reject"
        elif kind == "retype":
            resource[draw(st.sampled_from([name for name in MODELLED if name not in dropped]))] = draw(
                json_values
            )
            record.expect = "either" if record.expect == "load" else record.expect
        elif kind == "date":
            resource["period"] = {draw(st.sampled_from(["start", "end"])): draw(odd_dates)}
            record.expect = "either" if record.expect == "load" else record.expect
        elif kind == "reference":
            target = draw(st.sampled_from(["subject", "appointment"]))
            reference = {"reference": draw(odd_references)}
            resource[target] = reference if target == "subject" else [reference]
            record.expect = "either" if record.expect == "load" else record.expect
        elif kind == "huge":
            resource["length"] = {
                "value": draw(
                    st.one_of(
                        st.integers(1, 4000).map(lambda digits: 10**digits - 1),  # up to 4,000 digits
                        st.sampled_from([1e308, -1e308, 5e-324, -0.0, 2**63, -(2**63) - 1]),
                    )
                )
            }
            record.expect = "either" if record.expect == "load" else record.expect  # the size cap may apply
        elif kind == "deep":
            nested: Any = draw(json_values)
            for _ in range(draw(st.integers(1, 300))):
                nested = [nested]
            resource["extension"] = nested
            record.expect = "either" if record.expect == "load" else record.expect  # a depth cap may apply
        elif kind == "unicode":
            name = draw(tricky_text)
            if name not in (*MODELLED, "note"):
                resource[name] = draw(tricky_text)
        elif kind == "surrogate":
            resource["note"] = [{"text": draw(unicode_text) + draw(st.characters(categories=["Cs"]))}]
            record.expect = "reject"
        elif kind == "other-type" and "resourceType" not in dropped:
            resource["resourceType"] = draw(
                st.sampled_from(["Patient", "Observation", "encounter", "", "Encounter "])
            )
            record.expect = "either" if record.expect == "load" else record.expect
        elif kind == "big":  # around the item size limit
            resource["text"] = {"status": "generated", "div": "x" * draw(st.integers(380_000, 400_000))}
            record.expect = "either" if record.expect == "load" else record.expect
    for damage in draw(st.lists(st.sampled_from(DAMAGE), max_size=2, unique=True)):
        record.damage.append(damage)
        if damage not in ("bom", "crlf", "deep-text"):
            record.expect = "reject"
        elif damage == "deep-text" and record.expect == "load":
            record.expect = "either"
    return record


DAMAGE = ["duplicate-key", "huge-literal", "nan", "invalid-utf8", "garbage", "bom", "crlf", "deep-text"]
HUGE = "__huge__"
NAN = "__nan__"
BYTES = "__bytes__"
DEEP = "__deep__"


@st.composite
def records(draw: st.DrawFn) -> Record:
    record = draw(mutated(draw(valid_encounters())))
    if "huge-literal" in record.damage:
        record.resource["length"] = {"value": HUGE}
    if "nan" in record.damage:
        record.resource["priority"] = {"value": NAN}
    if "invalid-utf8" in record.damage:
        record.resource["note"] = [{"text": BYTES}]
    if "deep-text" in record.damage:
        record.resource["modifierExtension"] = DEEP
    return record


@st.composite
def damage_values(draw: st.DrawFn) -> dict[str, bytes]:
    depth = draw(st.integers(500, 12_000))
    return {
        HUGE: b"9" * draw(st.integers(4_301, 6_000)),  # past Python's integer-string conversion limit
        NAN: draw(st.sampled_from([b"NaN", b"Infinity", b"-Infinity"])),
        BYTES: b'"' + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xc0\xaf"])) + b'"',
        DEEP: b"[" * depth + b"]" * depth,
    }


def serialized(record: Record, values: dict[str, bytes], *, one_line: bool) -> bytes:
    text = json.dumps(
        record.resource,
        ensure_ascii=record.ascii_only,
        indent=None if one_line else (2 if record.pretty else None),
    )
    if "duplicate-key" in record.damage and record.resource:
        name = next(iter(record.resource))
        text = "{" + json.dumps(name) + ':"another value",' + text.lstrip()[1:]
    data = text.encode("utf-8", errors="surrogatepass")  # a lone surrogate becomes invalid UTF-8
    for placeholder, value in values.items():
        data = data.replace(json.dumps(placeholder).encode(), value)
    if "garbage" in record.damage:
        data += b" }x"
    if "bom" in record.damage:
        data = b"\xef\xbb\xbf" + data
    if "crlf" in record.damage:
        data += b"\r"
    return data


# ---- the check ----------------------------------------------------------------------------------


def without_store_meta(resource: Any) -> Any:
    """The resource without meta.versionId and meta.lastUpdated (and without a meta left empty)."""
    if not isinstance(resource, dict) or not isinstance(resource.get("meta"), dict):
        return resource
    meta = {k: v for k, v in resource["meta"].items() if k not in STORE_META}
    body = {k: v for k, v in resource.items() if k != "meta"}
    return {**body, "meta": meta} if meta else body


def canonical(resource: Any) -> str:
    return json.dumps(without_store_meta(resource), sort_keys=True, ensure_ascii=True)


def reference_reading(data: bytes) -> Any:
    """The record as a JSON reader sees it (None when it is not JSON); an integer too long for
    Python's int() stays text, so that the resource type of such a record can still be told."""
    try:
        return json.loads(data.decode("utf-8-sig"), parse_int=_integer)
    except (ValueError, RecursionError):
        return None


def _integer(text: str) -> int | str:
    return int(text) if len(text.lstrip("-")) <= 4300 else text


def stored(client: Any, encounter_id: str) -> Any:
    item = client.get_item(TableName=TEST_TABLE, Key=keys.encounter_key(encounter_id)).get("Item")
    return None if item is None else json.loads(item[keys.ATTR_RESOURCE]["S"])


def in_namespace(records: list[Record], prefix: str) -> None:
    """Each string id starts with ``prefix`` (cut to 64 characters), so that what one example
    writes to the shared table is its own."""
    for record in records:
        if isinstance(record.resource.get("id"), str):
            record.resource["id"] = (prefix + record.resource["id"])[:64]


@dataclass(frozen=True)
class Placed:
    where: str  # the place a rejection names: the file, or file:line for an NDJSON line
    record: Record
    data: bytes


def write_files(
    root: Path, batch: list[Record], in_ndjson: list[bool], blank_lines: list[bytes], values: dict[str, bytes]
) -> list[Placed]:
    """The records as ``r<n>.json`` files and lines of ``records.ndjson``, in load order (the
    loader reads a directory's files sorted by name: r0.json .. r5.json, then records.ndjson)."""
    files: list[Placed] = []
    lines: list[Placed] = []
    raw_lines: list[bytes] = []
    for number, (record, as_line) in enumerate(zip(batch, in_ndjson, strict=False)):
        data = serialized(record, values, one_line=as_line)
        if as_line:
            raw_lines.extend([*blank_lines, data])
            lines.append(Placed(f"{root / 'records.ndjson'}:{len(raw_lines)}", record, data))
        else:
            path = root / f"r{number}.json"
            path.write_bytes(data)
            files.append(Placed(str(path), record, data))
    if raw_lines:
        (root / "records.ndjson").write_bytes(b"\n".join(raw_lines) + b"\n")
    return files + lines


def by_record(placed: list[Placed], rejections: list[Rejection]) -> dict[str, Rejection]:
    """Each rejection under the place of its record (a .json file's may add the line it failed at)."""
    found: dict[str, Rejection] = {}
    for rejection in rejections:
        where = next(
            (
                p.where
                for p in placed
                if rejection.where == p.where or rejection.where.startswith(f"{p.where}:")
            ),
            None,
        )
        assert where is not None, f"a rejection names no record: {rejection}"
        assert where not in found, f"two rejections for one record: {found[where]} / {rejection}"
        assert rejection.reason.strip(), rejection
        assert "Traceback" not in rejection.reason
        found[where] = rejection
    return found


def other_resource_type(reading: Any) -> bool:
    kind = reading.get("resourceType") if isinstance(reading, dict) else None
    return isinstance(kind, str) and kind != "Encounter"


_examples = iter(range(10**9))
CLEAN = {
    "resourceType": "Encounter",
    "id": "e1",
    "status": "planned",
    "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
}
NO_DAMAGE = {HUGE: b"9" * 4_301, NAN: b"NaN", BYTES: b'"\xff"', DEEP: b"[" * 500 + b"]" * 500}


@example(  # a meta that is not an object: the writer raised out of the load (found by fuzzing)
    batch=[Record({**CLEAN, "meta": "0"}, expect="either")],
    in_ndjson=[False] * 6,
    blank_lines=[],
    values=NO_DAMAGE,
)
@example(  # "meta": null was written as a meta object: it did not read back equal (found by fuzzing)
    batch=[Record({**CLEAN, "meta": None}, expect="either")],
    in_ndjson=[True] * 6,
    blank_lines=[],
    values=NO_DAMAGE,
)
@given(
    batch=st.lists(records(), min_size=1, max_size=6),
    in_ndjson=st.lists(st.booleans(), min_size=6, max_size=6),
    blank_lines=st.lists(st.sampled_from([b"", b"  ", b"\t", b"\r"]), max_size=2),
    values=damage_values(),
)
def test_every_record_is_loaded_and_reads_back_equal_or_rejected_with_a_reason(
    table: Any, batch: list[Record], in_ndjson: list[bool], blank_lines: list[bytes], values: dict[str, bytes]
) -> None:
    prefix = f"x{next(_examples)}."
    in_namespace(batch, prefix)
    with tempfile.TemporaryDirectory() as directory:
        placed = write_files(Path(directory), batch, in_ndjson, blank_lines, values)
        rejections: list[Rejection] = []
        report = load_paths(
            [Path(directory)], EncounterWriter(table, TEST_TABLE, value_paths()), on_reject=rejections.append
        )

    rejected = by_record(placed, rejections)
    loaded: dict[str, str] = {}  # id -> place of the record written with it
    rejected_ids: set[str] = set()
    skipped = 0
    for place in placed:  # in load order
        record, reading = place.record, reference_reading(place.data)
        rejection = rejected.get(place.where)
        if rejection is not None and rejection.reason.startswith("duplicate id"):
            assert isinstance(reading, dict), rejection
            assert reading.get("id") in loaded, f"not a repeat of an id written before: {rejection}"
        elif rejection is not None:
            assert record.expect != "load", f"a clean Encounter was rejected: {rejection}"
            if isinstance(reading, dict) and isinstance(reading.get("id"), str):
                rejected_ids.add(reading["id"])
        elif other_resource_type(reading):
            assert record.expect != "load", f"{place.where}: a clean Encounter was skipped"
            skipped += 1
        else:
            assert record.expect != "reject", f"{place.where}: damaged ({record.damage}), yet not rejected"
            assert isinstance(reading, dict), f"{place.where}: not JSON, yet not rejected"
            assert reading["id"] not in loaded, f"{place.where}: id {reading['id']} written twice in one load"
            loaded[reading["id"]] = place.where
            back = stored(table, reading["id"])
            assert back is not None, f"{place.where}: neither rejected nor written"
            assert canonical(back) == canonical(reading), f"{place.where}: reads back different"
            assert back["meta"]["versionId"] == "1"
    for encounter_id in rejected_ids - set(loaded):
        if encounter_id.startswith(prefix):
            assert stored(table, encounter_id) is None, f"{encounter_id}: rejected, yet written"
    assert (report.loaded, report.rejected, report.skipped) == (len(loaded), len(rejected), skipped)
    assert (report.written, report.unreadable) == (len(loaded), 0)
