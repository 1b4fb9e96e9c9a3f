"""Random requests through the real handlers (moto): query strings over the known and unknown
parameter names with modifiers and hostile values, percent-encoding tricks, random ids on the read
route and random headers. Whatever the request, the answer is never a 5xx, always FHIR JSON (a
searchset Bundle, an Encounter, or an OperationOutcome with one issue that says what was wrong),
and never carries a stack trace or AWS error text."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, quote

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from fhir_encounter.errors import CONTENT_TYPE
from fhir_encounter.formats import GENERAL_PARAMETERS
from fhir_encounter.search.cursor import Cursor, encode_cursor, search_fingerprint
from fhir_encounter.search.parameters import RESULT_PARAMETERS, SEARCH_PARAMETERS, ParamType
from fhir_encounter.search.query import TOTAL_MODES
from fhir_encounter_tools.devserver.events import rest_api_event
from tests.support import TEST_SECRET, Writer, encounter, lambda_response

KNOWN_NAMES = [*SEARCH_PARAMETERS, *RESULT_PARAMETERS, *GENERAL_PARAMETERS]
LEAKS = ("Traceback", "botocore", "ClientError")
LOCAL_BASE = "http://127.0.0.1:3000/v1"

# The fixed data set: every subject form, appointments, periods of every precision, statuses.
ENCOUNTERS = [
    encounter("enc-1", subject="Patient/p1", start="2021-03-01T09:00:00Z", end="2021-03-01T09:30:00Z"),
    encounter("enc-2", subject="Patient/p1", start="2021-06-15", appointments=["Appointment/a1"]),
    encounter("enc-3", subject="Patient/p2", start="2020-12-31T23:30:00-05:00", status="in-progress"),
    encounter(
        "enc-4", subject="Group/g1", end="2020-05-01", appointments=["Appointment/a1", "Appointment/a2"]
    ),
    encounter("enc-5", subject=None, status="planned"),
    encounter("enc-6", subject="http://other.example/fhir/Patient/p1", start="2022-01-10T08:00:00+01:00"),
    encounter("enc-7", subject=f"{LOCAL_BASE}/Patient/p3", start="2019-07", end="2019-08"),
    *(encounter(f"enc.{n}", subject="Patient/p4", start=f"2023-01-{n + 1:02d}") for n in range(3)),
]
IDS = [resource["id"] for resource in ENCOUNTERS]

# ---- values -----------------------------------------------------------------------------------


def pick[T](*strategies: st.SearchStrategy[T]) -> st.SearchStrategy[T]:
    """One of the strategies, each as likely (``one_of`` leans towards whatever draws small)."""
    return st.sampled_from(strategies).flatmap(lambda strategy: strategy)


BIDI = "\u202e\u202d\u202a\u202b\u202c\u200e\u200f\u2066\u2067\u2068\u2069\u061c"
INVISIBLE = "\u200b\u200c\u200d\ufeff\u00ad\u2028\u2029\u0085"
CONTROL = "".join(chr(n) for n in [*range(32), 127])
hostile_characters = pick(
    st.sampled_from(BIDI + INVISIBLE + CONTROL),
    st.sampled_from(",|:$%+&=#?/\\\"'<>;* \u00a0"),
    st.characters(categories=["Cs"]),  # lone surrogates (a JSON event can carry "\ud800")
    st.characters(codec="utf-8"),
    st.sampled_from("²٣𝟘０ⅷ"),  # digits outside ASCII
)
hostile_text = st.text(hostile_characters, max_size=40)
long_text = st.builds(
    lambda unit, size: (unit * size)[:size],
    st.text(hostile_characters, min_size=1, max_size=3),
    st.integers(1_000, 10_000),
)
numbers = st.one_of(
    st.integers(-(10**12), 10**12).map(str),
    st.sampled_from(
        [
            "0",
            "1",
            "100",
            "101",
            "10000",
            "10001",
            "999999999",
            "1000000000",
            "-0",
            "+5",
            " 7 ",
            "1e3",
            "0x10",
            "1.0",
            "1_000",
            "٣",
            "²",
            "\uff11\uff10",  # fullwidth digits
            "NaN",
            "inf",
            "",
            " ",
        ]
    ),
)
dates = st.builds(
    lambda prefix, value: prefix + value,
    st.sampled_from(["", "eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap", "xx", "EQ"]),
    st.one_of(
        st.sampled_from(
            [
                "2021",
                "2021-06",
                "2021-06-15",
                "2021-06-15T10:30",
                "2021-06-15T10:30:00",
                "2021-06-15T10:30:00.123Z",
                "2021-06-15T10:30:00+14:00",
                "2021-06-15T10:30:00 05:00",
                "2021-02-30",
                "2021-13",
                "0000",
                "9999-12-31T23:59:60Z",
                "2021-06-15T24:00:00Z",
                "1970-01-01T00:00:00-14:00",
                "20210615",
                "2021-6-1",
                "-2021",
                "9999-12-31T23:59:59-14:00",
                "0001-01-01T00:00:00+14:00",
                "2021-06-15T10:30:00.1234567890123Z",
            ]
        ),
        st.dates().map(str),
        st.datetimes().map(lambda moment: moment.isoformat()),
    ),
)
references = st.builds(
    lambda form, kind, ident: form.format(type=kind, id=ident),
    st.sampled_from(
        [
            "{id}",
            "{type}/{id}",
            f"{LOCAL_BASE}/{{type}}/{{id}}",
            "http://other.example/fhir/{type}/{id}",
            "urn:uuid:{id}",
            "{type}/{id}/_history/1",
            "/{type}/{id}",
            "{type}/",
            "#{id}",
            "{type}/{id}|x",
        ]
    ),
    st.sampled_from(["Patient", "Group", "Appointment", "Encounter", "patient", ""]),
    st.one_of(st.sampled_from(["p1", "p2", "p3", "p4", "g1", "a1", "a2", "x" * 65]), hostile_text),
)
cursors = st.one_of(
    st.text(
        st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/"), max_size=120
    ),
    hostile_text,
    long_text,
)
PLAUSIBLE: dict[str, st.SearchStrategy[str]] = {
    "_id": st.one_of(st.sampled_from(IDS), st.from_regex(r"[A-Za-z0-9.\-]{1,64}", fullmatch=True)),
    "patient": references,
    "subject": references,
    "appointment": references,
    "date": dates,
    "status": st.sampled_from(
        [
            "finished",
            "planned",
            "in-progress",
            "FINISHED",
            "http://hl7.org/fhir/encounter-status|finished",
            "http://hl7.org/fhir/encounter-status|",
            "|finished",
            "other|finished",
            "|",
            "",
        ]
    ),
    "_count": numbers,
    "_offset": numbers,
    "_total": st.sampled_from(["accurate", "estimate", "none", "None", "", "true"]),
    "_cursor": cursors,
    "_format": st.sampled_from(
        [
            "json",
            "xml",
            "application/fhir+json",
            "application/fhir+xml",
            "application/xml",
            "text/json",
            "ttl",
            "application/json; charset=utf-8",
            "JSON",
            "",
        ]
    ),
    "_pretty": st.sampled_from(["true", "false", "TRUE", "1", "yes", ""]),
}


tokens = st.sampled_from(
    ["AMB", "http://snomed.info/sct|185347001", "|x", "urn:dd|", "a\\,b", "a\\|b", "|", "x|y|z", "\\"]
)
quantities = st.builds(
    lambda prefix, number, unit: prefix + number + unit,
    st.sampled_from(["", "gt", "le", "ap", "ne", "xx"]),
    st.sampled_from(["1", "1.50", "1e2", "-0", "1e999999", "NaN", "\u0661", "", ".", "1e-99999999999"]),
    st.sampled_from(["", "|http://unitsofmeasure.org|h", "||min", "|x|", "|a|b|c"]),
)
# Parameters without a strategy of their own take their type's: any entry added to the registry
# is fuzzed with values of its kind.
BY_TYPE: dict[ParamType, st.SearchStrategy[str]] = {
    ParamType.TOKEN: tokens,
    ParamType.REFERENCE: references,
    ParamType.DATE: dates,
    ParamType.QUANTITY: quantities,
}


def plausible(name: str) -> st.SearchStrategy[str]:
    base, _, modifier = name.partition(":")
    if modifier == "missing":
        return st.sampled_from(["true", "false", "true,false", "TRUE", "1", ""])
    if base in PLAUSIBLE:
        return PLAUSIBLE[base]
    if base in SEARCH_PARAMETERS:
        return BY_TYPE.get(SEARCH_PARAMETERS[base].type, hostile_text)
    return hostile_text


def value_for(name: str) -> st.SearchStrategy[str]:
    """A value for ``name``: plausible for it, hostile, long, of another parameter's type, an OR
    list, or a plausible value with hostile characters around or inside it."""
    good = plausible(name)
    return pick(
        good,
        good,
        hostile_text,
        long_text,
        st.sampled_from(list(PLAUSIBLE.values())).flatmap(lambda other: other),  # a wrong type
        st.lists(good, min_size=2, max_size=6).map(",".join),
        st.tuples(st.lists(good, min_size=1, max_size=3), st.integers(95, 105)).map(
            lambda parts: ",".join((parts[0] * 105)[: parts[1]])  # around the 100-value limit
        ),
        st.tuples(hostile_text, good, hostile_text).map("".join),
        st.tuples(good, hostile_characters, st.integers(0, 80)).map(
            lambda parts: parts[0][: parts[2]] + parts[1] + parts[0][parts[2] :]
        ),
    )


names = pick(
    st.sampled_from(KNOWN_NAMES),
    st.sampled_from(KNOWN_NAMES),
    st.sampled_from(KNOWN_NAMES),
    st.sampled_from(KNOWN_NAMES).flatmap(
        lambda name: st.sampled_from(
            [
                "missing",
                "exact",
                "not",
                "above",
                "below",
                "text",
                "Patient",
                "identifier",
                "",
                *(SEARCH_PARAMETERS[name].modifiers if name in SEARCH_PARAMETERS else ()),
            ]
        ).map(lambda modifier: f"{name}:{modifier}")
    ),
    st.sampled_from(
        [
            "foo",
            "_sort",
            "_include",
            "_elements",
            "_lastUpdated",
            "_summary",
            "Patient",
            "PATIENT",
            "_ID",
            "patient.name",
            " patient",
            "_count[]",
            "",
            "_",
            "__proto__",
            "access_token",
        ]
    ),
    hostile_text,
    long_text.map(lambda text: text[:2000]),
)
VALID_BY_TYPE = {
    ParamType.TOKEN: ["AMB", "http://snomed.info/sct|185347001", "urn:dd|", "|x"],
    ParamType.REFERENCE: ["x1", "Location/location-01", "http://other.example/fhir/Organization/o1"],
    ParamType.DATE: ["ge2021", "lt2023-06-01", "eq2021-03-04"],
    ParamType.QUANTITY: ["gt1|http://unitsofmeasure.org|h", "le90||min", "2"],
}
# Mostly valid parameters with one or two of any kind among them: a request with many bad
# parameters stops at the first, and the others would never be reached.
VALID: dict[str, st.SearchStrategy[str]] = {
    "_id": st.sampled_from(IDS),
    "patient": st.sampled_from(
        ["p1", "Patient/p2", f"{LOCAL_BASE}/Patient/p3", "http://other.example/fhir/Patient/p1"]
    ),
    "subject": st.sampled_from(["p1", "Group/g1", "Patient/p4", "p1,p2"]),
    "appointment": st.sampled_from(["a1", "Appointment/a2", "a1,a2"]),
    "date": st.builds(
        lambda prefix, value: prefix + value,
        st.sampled_from(["", "ge", "le", "ne", "sa", "eb", "ap"]),
        st.sampled_from(
            ["2021", "2021-06", "2021-06-15", "2023-01-05T10:30:00Z", "2020-12-31T23:30:00-05:00"]
        ),
    ),
    "status": st.sampled_from(
        ["finished", "planned,in-progress", "http://hl7.org/fhir/encounter-status|finished"]
    ),
    **{
        name: st.sampled_from(VALID_BY_TYPE[parameter.type])
        for name, parameter in SEARCH_PARAMETERS.items()
        if not parameter.keyed and parameter.type in VALID_BY_TYPE
    },
    "_count": st.integers(0, 120).map(str),
    "_offset": st.integers(0, 20).map(str),
    "_total": st.sampled_from(TOTAL_MODES),
    "_format": st.sampled_from(["json", "application/fhir+json"]),
    "_pretty": st.sampled_from(["true", "false"]),
}
# Valid parameters, at most once each (a result parameter given twice is a 400).
valid_parameters = st.lists(st.sampled_from(list(VALID)), max_size=4, unique=True).flatmap(
    lambda chosen: st.tuples(*(st.tuples(st.just(name), VALID[name]) for name in chosen)).map(list)
)
any_parameters = st.lists(names.flatmap(lambda name: st.tuples(st.just(name), value_for(name))), max_size=2)
parameters = st.tuples(valid_parameters, any_parameters).flatmap(
    lambda lists: st.permutations([*lists[0], *lists[1]])
)


def multi_value(pairs: list[tuple[str, str]]) -> dict[str, list[str]]:
    query: dict[str, list[str]] = {}
    for name, value in pairs:
        query.setdefault(name, []).append(value)
    return query


def percent_encoded(text: str, how: str) -> str:
    """One way a client may put ``text`` in a query string (then decoded once, as API Gateway does)."""
    encoded = quote(text, safe="", errors="surrogatepass")
    match how:
        case "raw":  # unencoded: '&', '=', '+', '%' and '#' keep their query-string meaning
            return text
        case "double":
            return quote(encoded, safe="")
        case "comma":
            return encoded.replace("%2C", ",")
        case "nul":
            return encoded + "%00"
        case "broken":
            return encoded + "%G1%" + "%e9"  # not an escape, a lone '%', an escape of invalid UTF-8
        case _:
            return encoded


def query_string(pairs: list[tuple[str, str]], ways: list[str]) -> str:
    return "&".join(
        f"{percent_encoded(name, way)}={percent_encoded(value, way)}"
        for (name, value), way in zip(pairs, ways, strict=False)
    )


ENCODINGS = ["plain", "raw", "double", "comma", "nul", "broken"]
CRITERIA = [name for name in VALID if name in SEARCH_PARAMETERS]
sort_keys = st.one_of(
    st.builds(
        lambda moment, ident: f"{moment.isoformat(timespec='microseconds')}Z#{ident}",
        st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)),
        st.sampled_from([*IDS, "", "~", "zzzz"]),
    ),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40),
    st.sampled_from(["", "#", "0000-00", "~", "\x7f", "9999-99-99T99:99:99.999999Z#~"]),
)


@st.composite
def signed_cursor_queries(draw: st.DrawFn) -> dict[str, list[str]]:
    """A search that carries a cursor this server could have signed, whatever its content (a
    position, offset and total no page ever gave): its signature and binding hold, so the
    search resumes from wherever the cursor says."""
    criteria = [
        (name, draw(VALID[name]))
        for name in draw(st.lists(st.sampled_from(CRITERIA), max_size=3, unique=True))
    ]
    count = draw(st.integers(1, 100))
    total_mode = draw(st.sampled_from(TOTAL_MODES))
    offset = draw(st.integers(0, 20_000))
    total = None if total_mode == "none" else draw(st.one_of(st.none(), st.integers(-3, 10**9)))
    cursor = Cursor(draw(sort_keys), offset, total)
    token = encode_cursor(cursor, search_fingerprint(tuple(criteria), count, total_mode), TEST_SECRET)
    return {
        **multi_value(criteria),
        "_count": [str(count)],
        "_offset": [str(offset)],
        "_total": [total_mode],
        "_cursor": [token],
    }


# The multi-value parameters of a search event: as an event may hold them (any Unicode, lone
# surrogates included: a JSON event can carry "\ud800"), decoded from a query string as API
# Gateway does, or around a cursor this server signed.
search_queries = pick(
    parameters.map(multi_value),
    st.tuples(parameters, st.lists(st.sampled_from(ENCODINGS), min_size=8, max_size=8)).map(
        lambda parts: parse_qs(query_string(*parts), keep_blank_values=True)
    ),
    signed_cursor_queries(),
)


# ---- headers ----------------------------------------------------------------------------------

# What HTTP carries in a header value: visible ISO-8859-1 octets, spaces and tabs (no CR, LF or
# NUL: the connection would split or refuse them before API Gateway makes an event).
header_text = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f", include_characters="\t"),
    max_size=60,
)
HEADER_VALUES: dict[str, st.SearchStrategy[str]] = {
    "Accept": st.sampled_from(
        [
            "*/*",
            "application/fhir+json",
            "application/json",
            "application/fhir+xml",
            "application/xml",
            "text/html",
            "application/fhir+json;q=0",
            "application/*;q=0.5",
            "*/*;q=abc",
            "application/json;q=",
            "application/fhir+xml, application/fhir+json;q=0.1",
            ";;;",
            ",",
            "",
        ]
    ),
    "Prefer": st.sampled_from(
        [
            "handling=strict",
            "handling=lenient",
            "HANDLING=STRICT",
            "return=minimal, handling=strict",
            "handling=strict;x=1",
            "handling",
            "=",
            "",
        ]
    ),
    "If-None-Match": st.sampled_from(['W/"1"', '"1"', "*", 'W/"2"', 'W/"1", W/"2"', 'W/""', "W/", ",", ""]),
    "Host": st.sampled_from(
        [
            "127.0.0.1:3000",
            "abc.execute-api.us-east-1.amazonaws.com",
            "[::1]:8080",
            "example.org:99999",
            "a/b",
            "evil.example/fhir?x=",
            "",
        ]
    ),
    "X-Forwarded-Proto": st.sampled_from(["https", "http", "https, http", "HTTPS", "ftp", ",", ""]),
}
headers = st.fixed_dictionaries(
    {},
    optional={name: st.one_of(values, header_text) for name, values in HEADER_VALUES.items()},
)

ids = st.one_of(
    st.sampled_from(IDS),
    st.from_regex(r"[A-Za-z0-9.\-]{1,64}", fullmatch=True),
    st.sampled_from(["x" * 65, "..", ".", "_meta", "a,b", "%2e%2e", "enc-1/_history/1", "metadata"]),
    hostile_text.filter(bool),
    long_text,
)


# ---- the response checks -------------------------------------------------------------------------


def check(response: dict[str, Any], *, expected: str, if_none_match: bool = False) -> dict[str, Any] | None:
    """The response as a client may rely on it; its parsed body (None for a 304)."""
    status = response["statusCode"]
    header_map = {
        name: value for name, values in response.get("multiValueHeaders", {}).items() for value in values
    }
    header_map.update(response.get("headers") or {})
    for name, value in header_map.items():
        assert not any(leak in f"{name}: {value}" for leak in LEAKS), (name, value)
    assert status < 500, response
    body_text = response.get("body")
    if status == 304:
        assert if_none_match, "304 without If-None-Match"
        assert not body_text
        assert header_map.get("ETag")
        return None
    assert header_map.get("Content-Type") == CONTENT_TYPE, header_map
    assert isinstance(body_text, str)
    body_text.encode("utf-8")  # a body that can be sent: no lone surrogates
    assert not any(leak in body_text for leak in LEAKS), body_text[:500]
    body = json.loads(body_text)
    assert isinstance(body, dict)
    if 400 <= status < 500:
        assert body["resourceType"] == "OperationOutcome", body
        assert len(body["issue"]) == 1, body
        issue = body["issue"][0]
        assert issue["severity"] == "error"
        assert isinstance(issue["code"], str)
        assert issue["code"]
        text = issue["details"]["text"]
        assert isinstance(text, str)
        assert text.strip()
    elif status == 200 and expected == "Bundle":
        assert (body["resourceType"], body["type"]) == ("Bundle", "searchset"), body
        assert all(entry["resource"]["resourceType"] == "Encounter" for entry in body.get("entry", []))
        assert body["link"][0]["relation"] == "self"
    elif status == 200:
        assert body["resourceType"] == expected, body
    else:
        raise AssertionError(f"unexpected status {status}: {body}")
    return body


@pytest.fixture
def seeded(put: Writer) -> None:
    """The fixed data set, written once per test function (every example reads it, none writes)."""
    put(*ENCOUNTERS)


def search_event(query: dict[str, list[str]], header_values: dict[str, str]) -> dict[str, Any]:
    return rest_api_event(
        method="GET", path="/Encounter", resource="/Encounter", query=query, headers=header_values
    )


# ---- the properties ----------------------------------------------------------------------------


@pytest.mark.usefixtures("seeded")
@given(query=search_queries, header_values=headers)
@example(query={"_id": ["enc-1"], "status": ["\ud800"]}, header_values={})  # was a 500 (found by fuzzing)
def test_any_search_gets_a_bundle_or_an_operation_outcome(
    query: dict[str, list[str]], header_values: dict[str, str]
) -> None:
    check(lambda_response(search_event(query, header_values)), expected="Bundle")


@pytest.mark.usefixtures("seeded")
@given(
    encounter_id=ids,
    encoded=st.booleans(),
    params=st.lists(
        st.sampled_from(["_format", "_pretty", "foo"]).flatmap(lambda n: st.tuples(st.just(n), value_for(n))),
        max_size=3,
    ),
    header_values=headers,
)
def test_any_id_and_headers_on_the_read_route_get_an_encounter_or_an_operation_outcome(
    encounter_id: str, encoded: bool, params: list[tuple[str, str]], header_values: dict[str, str]
) -> None:
    query = multi_value(params)
    segment = quote(encounter_id, safe="", errors="surrogatepass") if encoded else encounter_id
    event = rest_api_event(
        method="GET",
        path=f"/Encounter/{segment}",
        resource="/Encounter/{id}",
        path_parameters={"id": encounter_id},
        query=query,
        headers=header_values,
    )
    body = check(lambda_response(event), expected="Encounter", if_none_match="If-None-Match" in header_values)
    if body is not None and body["resourceType"] == "Encounter":
        assert body["id"] == encounter_id
