"""form_body: the parameters of a POST /Encounter/_search body, joined to the URL's; every body it
cannot read a 4xx that says why (415 type, charset or coding; 400 encoding; 413 size; 401 token)."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import replace

import pytest

from fhir_encounter.errors import (
    ContentTooLargeError,
    FhirError,
    InvalidRequestError,
    TokenInUrlError,
    UnsupportedMediaTypeError,
)
from fhir_encounter.form_body import (
    FORM_TYPE,
    MAX_FORM_BYTES,
    form_parameter_names,
    form_parameters,
    with_form_parameters,
)
from fhir_encounter.gateway import Headers, Request


def request(
    body: str | bytes | None,
    content_type: str | None = FORM_TYPE,
    *,
    base64_encoded: bool = False,
    query: Mapping[str, list[str]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Request:
    if isinstance(body, bytes):
        body = base64.b64encode(body).decode() if base64_encoded else body.decode()
    return Request(
        method="POST",
        resource="/Encounter/_search",
        path="/Encounter/_search",
        path_parameters={},
        query=dict(query or {}),
        headers=Headers({**({"Content-Type": content_type} if content_type else {}), **(headers or {})}),
        context={},
        body=body,
        body_base64=base64_encoded,
    )


def refusal(given: Request) -> FhirError:
    with pytest.raises(FhirError) as caught:
        with_form_parameters(given)
    return caught.value


def test_the_form_fields_in_order_percent_and_plus_decoded() -> None:
    given = request("patient=Patient%2Fp1&date=ge2021-01-01T00:00:00%2B01:00&status=in+progress&date=lt2022")
    assert form_parameters(given) == [
        ("patient", "Patient/p1"),
        ("date", "ge2021-01-01T00:00:00+01:00"),
        ("status", "in progress"),
        ("date", "lt2022"),
    ]


def test_the_body_parameters_follow_the_url_ones_as_repeats() -> None:
    merged = with_form_parameters(
        request("date=lt2022&patient=p1", query={"date": ["ge2021"], "_count": ["5"]})
    )
    assert merged.query == {"date": ["ge2021", "lt2022"], "_count": ["5"], "patient": ["p1"]}
    assert (merged.body, merged.body_base64, merged.method, merged.resource) == (
        None,
        False,
        "POST",
        "/Encounter/_search",
    )


def test_non_ascii_values_arrive_as_text() -> None:
    assert form_parameters(request("_id=%C3%A9t%C3%A9,caf%C3%A9")) == [("_id", "été,café")]
    assert form_parameters(request("_id=été".encode(), base64_encoded=True)) == [("_id", "été")]


def test_blank_values_and_names_without_a_value_are_kept_blank() -> None:
    assert form_parameters(request("patient=&status&_count=3")) == [
        ("patient", ""),
        ("status", ""),
        ("_count", "3"),
    ]


@pytest.mark.parametrize(
    "content_type",
    [
        FORM_TYPE,
        "application/x-www-form-urlencoded; charset=UTF-8",
        'Application/X-WWW-Form-Urlencoded;charset="utf-8"',
        "application/x-www-form-urlencoded ; charset=utf8",
    ],
)
def test_the_form_type_with_or_without_a_utf8_charset_is_read(content_type: str) -> None:
    assert form_parameters(request("patient=p1", content_type)) == [("patient", "p1")]


@pytest.mark.parametrize(
    ("body", "content_type"), [(None, None), ("", None), ("", FORM_TYPE), (None, FORM_TYPE)]
)
def test_no_body_or_an_empty_one_has_no_parameters(body: str | None, content_type: str | None) -> None:
    assert form_parameters(request(body, content_type)) == []
    assert with_form_parameters(request(body, content_type, query={"patient": ["p1"]})).query == {
        "patient": ["p1"]
    }


def test_a_base64_body_is_decoded_first() -> None:
    given = request(b"patient=Patient%2Fp1&_count=2", base64_encoded=True)
    assert form_parameters(given) == [("patient", "Patient/p1"), ("_count", "2")]


@pytest.mark.parametrize(
    ("content_type", "text"),
    [
        (
            "application/json",
            f"POST /Encounter/_search takes a body of type {FORM_TYPE}, not 'application/json'",
        ),
        (
            "multipart/form-data; boundary=x",
            f"POST /Encounter/_search takes a body of type {FORM_TYPE}, not 'multipart/form-data'",
        ),
        (
            "application/fhir+json",
            f"POST /Encounter/_search takes a body of type {FORM_TYPE}, not 'application/fhir+json'",
        ),
        (
            "text/plain<script>",
            f"POST /Encounter/_search takes a body of type {FORM_TYPE}, not this Content-Type",
        ),
        (None, f"A POST /Encounter/_search body needs Content-Type: {FORM_TYPE}"),
        (
            f"{FORM_TYPE}; charset=iso-8859-1",
            f"The form body must be UTF-8 (Content-Type: {FORM_TYPE}; charset=utf-8)",
        ),
    ],
)
def test_another_media_type_or_charset_is_a_415_that_names_the_one_taken(
    content_type: str | None, text: str
) -> None:
    error = refusal(request("patient=p1", content_type))
    assert isinstance(error, UnsupportedMediaTypeError)
    assert (error.status, error.code, error.text) == (415, "not-supported", text)


def test_a_compressed_body_is_a_415() -> None:
    error = refusal(request(b"\x1f\x8b", base64_encoded=True, headers={"Content-Encoding": "gzip"}))
    assert (error.status, error.text) == (415, "The form body must not be compressed (no Content-Encoding)")


@pytest.mark.parametrize(
    "given",
    [
        request(b"patient=\xff\xfe", base64_encoded=True),  # raw bytes that are not UTF-8
        request("patient=%FF%FE"),  # percent-encoded bytes that are not UTF-8
        request("patient=%C3"),  # a truncated sequence
        request("patient=\udc80"),  # a lone surrogate: no UTF-8 text
    ],
    ids=["raw bytes", "percent-encoded", "truncated", "lone surrogate"],
)
def test_a_body_that_is_not_utf8_form_encoding_is_a_400(given: Request) -> None:
    error = refusal(given)
    assert isinstance(error, InvalidRequestError)
    assert (error.status, error.code) == (400, "invalid")
    assert "UTF-8" in error.text
    assert "\udc80" not in error.text
    assert "%FF" not in error.text


def test_a_body_marked_base64_that_is_not_is_a_400() -> None:
    error = refusal(request("patient=p1!", base64_encoded=True))
    assert (error.status, error.text) == (400, "The request body is marked base64 but is not valid base64")


@pytest.mark.parametrize("base64_encoded", [False, True])
def test_a_body_over_the_limit_is_a_413_and_one_at_it_is_read(base64_encoded: bool) -> None:
    at_limit = b"_id=" + b"a" * (MAX_FORM_BYTES - 4)
    assert form_parameters(request(at_limit, base64_encoded=base64_encoded)) == [
        ("_id", "a" * (MAX_FORM_BYTES - 4))
    ]
    error = refusal(request(at_limit + b"a", base64_encoded=base64_encoded))
    assert isinstance(error, ContentTooLargeError)
    assert (error.status, error.code, error.text) == (413, "too-long", "The form body is over 64 KB")


@pytest.mark.parametrize("body", ["access_token=abc", "patient=p1&access_token=", "access_token"])
def test_an_access_token_in_the_body_is_refused_as_in_the_url(body: str) -> None:
    error = refusal(request(body))
    assert isinstance(error, TokenInUrlError)
    assert (error.status, error.code) == (401, "login")
    assert error.headers() == {"WWW-Authenticate": 'Bearer error="invalid_request"'}
    assert error.text == "Send the access token in the Authorization header, never in the body or the URL"


def test_the_names_of_a_readable_body_and_none_of_an_unreadable_one() -> None:
    assert form_parameter_names(request("patient=p1&date=2021&date=2022")) == {"patient", "date"}
    assert form_parameter_names(request("patient=p1", "application/json")) == set()
    assert form_parameter_names(request("patient=%FF")) == set()
    assert form_parameter_names(request(b"a" * (MAX_FORM_BYTES + 1), base64_encoded=True)) == set()


def test_only_a_post_has_form_parameter_names() -> None:
    assert form_parameter_names(replace(request("patient=p1"), method="GET")) == set()
    assert form_parameter_names(request("patient=p1")) == {"patient"}
