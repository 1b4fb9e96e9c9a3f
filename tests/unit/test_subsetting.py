"""_summary and _elements: what each keeps of an Encounter (held to tests/oracle.py, written apart
from the code), the SUBSETTED tag, parsing on a search and on a read, and the links that repeat them."""

from __future__ import annotations

import copy
import json
from typing import Any
from urllib.parse import parse_qs

import pytest

from fhir_encounter.errors import InvalidRequestError
from fhir_encounter.search.query import SearchQuery, parse_search
from fhir_encounter.subsetting import (
    ELEMENTS,
    MANDATORY,
    SUBSETTED_TAG,
    SUMMARY_ELEMENTS,
    SUMMARY_INSIDE,
    Subset,
    parse_elements,
    parse_summary,
    subset_all,
    subset_for,
    subset_from_query,
    subset_json,
)
from tests import oracle

ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
SECURITY_TAG = {"system": "http://example.org/tags", "code": "research"}

# Every top-level element of R4's Encounter, with a backbone element's summary and other parts.
FULL: dict[str, Any] = {
    "resourceType": "Encounter",
    "id": "full",
    "meta": {"versionId": "2", "lastUpdated": "2024-01-01T00:00:00Z", "tag": [SECURITY_TAG]},
    "implicitRules": "http://example.org/rules",
    "language": "en",
    "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">x</div>'},
    "contained": [{"resourceType": "Organization", "id": "o"}],
    "extension": [{"url": "http://example.org/x", "valueString": "x"}],
    "modifierExtension": [{"url": "http://example.org/m", "valueBoolean": True}],
    "identifier": [{"system": "urn:mrn", "value": "1"}],
    "status": "finished",
    "statusHistory": [{"status": "arrived", "period": {"start": "2023-01-01"}}],
    "class": {"system": ACT, "code": "AMB"},
    "classHistory": [{"class": {"system": ACT, "code": "EMER"}, "period": {"start": "2023-01-01"}}],
    "type": [{"text": "checkup"}],
    "serviceType": {"text": "cardiology"},
    "priority": {"text": "routine"},
    "subject": {"reference": "Patient/p1"},
    "episodeOfCare": [{"reference": "EpisodeOfCare/e1"}],
    "basedOn": [{"reference": "ServiceRequest/s1"}],
    "participant": [
        {
            "id": "part1",
            "type": [{"text": "attender"}],
            "period": {"start": "2023-01-01"},
            "individual": {"reference": "Practitioner/d1"},
        }
    ],
    "appointment": [{"reference": "Appointment/ap1"}],
    "period": {"start": "2023-01-01", "end": "2023-01-02"},
    "length": {"value": 1, "unit": "d", "system": "http://unitsofmeasure.org", "code": "d"},
    "reasonCode": [{"text": "flu"}],
    "reasonReference": [{"reference": "Condition/c1"}],
    "diagnosis": [{"condition": {"reference": "Condition/c1"}, "use": {"text": "AD"}, "rank": 1}],
    "account": [{"reference": "Account/a1"}],
    "hospitalization": {"dischargeDisposition": {"text": "home"}},
    "location": [{"location": {"reference": "Location/l1"}}],
    "serviceProvider": {"reference": "Organization/o1"},
    "partOf": {"reference": "Encounter/x1"},
}
FULL_JSON = json.dumps(FULL, separators=(",", ":"))


def subsetted(subset: Subset, resource: dict[str, Any] = FULL) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(subset_json(json.dumps(resource), subset))
    return result


def as_oracle_tags(resource: dict[str, Any]) -> dict[str, Any]:
    """``resource`` with its SUBSETTED tag as the oracle writes it (another display: HAPI's)."""
    result = copy.deepcopy(resource)
    result["meta"]["tag"] = [
        oracle.SUBSETTED if tag == SUBSETTED_TAG else tag for tag in result["meta"]["tag"]
    ]
    return result


def tags(resource: dict[str, Any]) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = resource["meta"]["tag"]
    return result


# ---- what each subset keeps --------------------------------------------------------------------


def test_the_element_lists_are_the_oracles() -> None:
    """R4 (4.0.1) Encounter: the oracle's lists agree with fhir.resources' flags (tests/unit/test_oracle.py)
    and with HAPI's R4 model (isSummary of identifier, status, class, type, serviceType, subject,
    episodeOfCare, participant, appointment, reasonCode, reasonReference, diagnosis)."""
    assert ELEMENTS == oracle.ELEMENTS
    assert MANDATORY == oracle.MANDATORY
    assert SUMMARY_ELEMENTS == oracle.SUMMARY
    assert SUMMARY_INSIDE == oracle.SUMMARY_INSIDE
    assert set(FULL) - {"resourceType"} == set(ELEMENTS)


@pytest.mark.parametrize("mode", ["true", "text", "data"])
def test_each_summary_mode_keeps_what_the_oracle_keeps(mode: str) -> None:
    assert as_oracle_tags(subsetted(Subset(summary=mode))) == oracle.summary(FULL, mode)


def test_summary_true_leaves_out_what_r4_does_not_mark_summary() -> None:
    result = subsetted(Subset(summary="true"))
    for name in ("period", "priority", "length", "basedOn", "account", "hospitalization", "text", "location"):
        assert name not in result
    assert result["participant"] == [
        {"type": [{"text": "attender"}], "individual": {"reference": "Practitioner/d1"}}
    ]
    assert result["diagnosis"] == [{"condition": {"reference": "Condition/c1"}}]


def test_summary_text_keeps_text_id_meta_and_the_mandatory_elements() -> None:
    assert set(subsetted(Subset(summary="text"))) == {"resourceType", "id", "meta", "text", "status", "class"}


def test_summary_data_keeps_everything_but_the_text() -> None:
    result = subsetted(Subset(summary="data"))
    assert {k: v for k, v in result.items() if k != "meta"} == {
        k: v for k, v in FULL.items() if k not in ("meta", "text")
    }


@pytest.mark.parametrize("names", ["subject,period", "period,subject,period", "subject, period ,"])
def test_elements_keep_the_named_the_mandatory_id_and_meta(names: str) -> None:
    subset = Subset(elements=parse_elements(names))
    assert as_oracle_tags(subsetted(subset)) == oracle.elements(FULL, "subject,period")
    assert list(subsetted(subset)) == ["resourceType", "id", "meta", "status", "class", "subject", "period"]


def test_a_subset_keeps_the_stored_element_order_and_values() -> None:
    result = subsetted(Subset(elements=("period", "identifier")))
    assert list(result) == ["resourceType", "id", "meta", "identifier", "status", "class", "period"]
    assert result["period"] == FULL["period"]


def test_the_subsetted_tag_is_added_after_the_tags_the_encounter_had() -> None:
    result = subsetted(Subset(summary="true"))
    assert tags(result) == [SECURITY_TAG, SUBSETTED_TAG]
    assert result["meta"]["versionId"] == "2"
    assert SUBSETTED_TAG == {
        "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
        "code": "SUBSETTED",
        "display": "subsetted",
    }


def test_the_subsetted_tag_is_added_once() -> None:
    once = subsetted(Subset(summary="data"))
    assert tags(subsetted(Subset(summary="data"), once)) == [SECURITY_TAG, SUBSETTED_TAG]


def test_an_encounter_without_meta_gets_one_with_the_tag() -> None:
    bare = {"resourceType": "Encounter", "id": "b", "status": "planned", "class": {"code": "AMB"}}
    assert subsetted(Subset(summary="text"), bare) == {**bare, "meta": {"tag": [SUBSETTED_TAG]}}


def test_subset_all_subsets_each_and_leaves_them_whole_without_a_subset() -> None:
    resources = [("full", FULL_JSON), ("full2", FULL_JSON)]
    assert subset_all(resources, None) is resources
    kept = subset_all(resources, Subset(summary="text"))
    assert [resource_id for resource_id, _ in kept] == ["full", "full2"]
    assert all(
        set(json.loads(text)) == {"resourceType", "id", "meta", "text", "status", "class"} for _, text in kept
    )


def test_non_ascii_text_stays_as_stored() -> None:
    resource = {
        **FULL,
        "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">é</div>'},
    }
    assert "é" in subset_json(json.dumps(resource, ensure_ascii=False), Subset(summary="text"))


# ---- parsing -----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["true", "text", "data", "count", "false"])
def test_every_r4_summary_value_is_read(mode: str) -> None:
    assert parse_summary(mode) == mode


@pytest.mark.parametrize("value", ["TRUE", "yes", "1", "true,text", "summary"])
def test_another_summary_value_says_which_are_allowed(value: str) -> None:
    with pytest.raises(ValueError, match=r"^must be one of true, text, data, count, false$"):
        parse_summary(value)


def test_count_is_for_searches_only() -> None:
    with pytest.raises(ValueError, match="searches only"):
        parse_summary("count", search=False)


def test_unknown_element_names_are_ignored_or_named_under_strict_handling() -> None:
    assert parse_elements("subject,foo,period.start,Subject,resourceType") == ("subject",)
    with pytest.raises(ValueError, match=r"^not top-level elements of Encounter: foo, period.start$"):
        parse_elements("subject,foo,period.start", strict=True)


def test_strict_handling_names_at_most_ten_unknown_elements_each_cut_short() -> None:
    names = ",".join(f"x{n:02d}" + "y" * 100 for n in range(12))
    with pytest.raises(ValueError, match=r"^not top-level elements of Encounter: ") as caught:
        parse_elements(names, strict=True)
    text = str(caught.value)
    assert text.endswith(" and 2 more")
    assert text.count("…") == 10


def test_summary_false_and_no_parameter_are_the_whole_resource() -> None:
    assert subset_for(None, None) is None
    assert subset_for("false", None) is None
    assert subset_for("count", None) is None  # a search answers it as _count=0


@pytest.mark.parametrize("summary", ["true", "false", "count"])
def test_summary_with_elements_is_invalid(summary: str) -> None:
    with pytest.raises(InvalidRequestError, match="not both"):
        subset_for(summary, ("subject",))


def test_links_repeat_the_subset() -> None:
    assert Subset(summary="text").params == (("_summary", "text"),)
    assert Subset(elements=("subject", "period")).params == (("_elements", "subject,period"),)
    assert Subset(elements=()).params == (("_elements", "id"),)  # what it keeps: id, meta, status, class


# ---- on a search (the query model) -------------------------------------------------------------


def parsed(query: str, *, strict: bool = False) -> SearchQuery:
    return parse_search(parse_qs(query, keep_blank_values=True), strict=strict)[0]


def invalid_text(query: str, *, strict: bool = False) -> str:
    with pytest.raises(InvalidRequestError) as caught:
        parsed(query, strict=strict)
    assert (caught.value.status, caught.value.code) == (400, "invalid")
    return caught.value.text


@pytest.mark.parametrize(
    ("query", "subset"),
    [
        ("_summary=true", Subset(summary="true")),
        ("_summary=text", Subset(summary="text")),
        ("_summary=data", Subset(summary="data")),
        ("_summary=false", None),
        ("_summary=", None),
        ("_elements=subject,foo", Subset(elements=("subject",))),
        ("_elements=", None),
        ("", None),
    ],
)
def test_a_search_reads_its_subset(query: str, subset: Subset | None) -> None:
    assert parsed(query).subset == subset


@pytest.mark.parametrize("query", ["_summary=count", "_summary=count&_count=50", "_count=7&_summary=count"])
def test_summary_count_is_count_zero(query: str) -> None:
    query_model = parsed(query)
    assert (query_model.count, query_model.summary, query_model.subset) == (0, None, None)


def test_a_bad_summary_on_a_search_names_the_parameter_and_the_values() -> None:
    assert invalid_text("_summary=all") == (
        "Invalid value for search parameter '_summary': must be one of true, text, data, count, false"
    )


def test_a_search_with_summary_and_elements_is_invalid() -> None:
    assert invalid_text("_summary=true&_elements=subject") == (
        "Use _summary or _elements, not both: each asks for its own subset of the Encounter"
    )


def test_unknown_elements_on_a_search_are_ignored_or_invalid_under_strict_handling() -> None:
    assert parsed("_elements=foo,period").elements == ("period",)
    assert parse_search({"_elements": ["foo"]})[1] == []  # a known parameter: not listed as ignored
    assert invalid_text("_elements=foo,period", strict=True) == (
        "Invalid value for search parameter '_elements': not top-level elements of Encounter: foo"
    )


def test_summary_and_elements_take_no_modifier() -> None:
    with pytest.raises(Exception, match="does not support the modifier"):
        parsed("_summary:exact=true")


# ---- on a read (no pydantic, no search module) ---------------------------------------------------


def read_subset(query: str, *, strict: bool = False) -> Subset | None:
    return subset_from_query(parse_qs(query, keep_blank_values=True), strict=strict)


def read_invalid(query: str, *, strict: bool = False) -> str:
    with pytest.raises(InvalidRequestError) as caught:
        read_subset(query, strict=strict)
    return caught.value.text


def test_a_read_reads_its_subset() -> None:
    assert read_subset("_summary=text") == Subset(summary="text")
    assert read_subset("_elements=period,foo") == Subset(elements=("period",))
    assert read_subset("_summary=false") is None
    assert read_subset("_summary=&_elements=") is None
    assert read_subset("_pretty=true") is None


@pytest.mark.parametrize(
    ("query", "text"),
    [
        (
            "_summary=all",
            "Invalid value for parameter '_summary': must be one of true, text, data, count, false",
        ),
        (
            "_summary=count",
            "Invalid value for parameter '_summary': count is for searches only; a read takes "
            "true, text, data or false",
        ),
        ("_summary=true&_summary=text", "Invalid value for parameter '_summary': must be given once"),
        ("_elements=a&_elements=b", "Invalid value for parameter '_elements': must be given once"),
        (
            "_summary=data&_elements=subject",
            "Use _summary or _elements, not both: each asks for its own subset of the Encounter",
        ),
    ],
)
def test_a_bad_subset_on_a_read_is_invalid(query: str, text: str) -> None:
    assert read_invalid(query) == text


def test_unknown_elements_on_a_read_are_invalid_under_strict_handling() -> None:
    assert read_invalid("_elements=foo", strict=True) == (
        "Invalid value for parameter '_elements': not top-level elements of Encounter: foo"
    )


def test_a_lone_surrogate_on_a_read_is_invalid() -> None:
    text = read_invalid_of({"_elements": ["\udcff"]})
    assert text == "Invalid value for parameter '_elements': not valid Unicode text (a lone surrogate)"


def read_invalid_of(query: dict[str, list[str]]) -> str:
    with pytest.raises(InvalidRequestError) as caught:
        subset_from_query(query, strict=False)
    return caught.value.text
