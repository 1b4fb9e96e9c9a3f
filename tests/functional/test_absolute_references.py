"""Absolute references name a server: this server's own base is local, any other is foreign."""

from __future__ import annotations

import pytest

from tests.support import Writer, encounter, ids_of, search

# rest_api_event's request: Host 127.0.0.1:3000, http, stage v1 in the path.
REQUEST_BASE = "http://127.0.0.1:3000/v1"


@pytest.fixture
def stored(put: Writer) -> None:
    put(
        encounter("local-1", subject="Patient/p1", appointments=["Appointment/a1"]),
        encounter("foreign-2", subject="http://example.org/fhir/Patient/p2"),
        encounter("foreign-1", subject="http://example.org/fhir/Patient/p1"),
    )


@pytest.mark.usefixtures("stored")
@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("patient=p1", ["local-1"]),
        ("patient=Patient/p1", ["local-1"]),
        (f"patient={REQUEST_BASE}/Patient/p1", ["local-1"]),
        (f"appointment={REQUEST_BASE}/Appointment/a1", ["local-1"]),
        ("patient=http://evil.example/fhir/Patient/p1", []),
        ("patient=http://example.org/fhir/Patient/p1", ["foreign-1"]),
        ("patient=http://example.org/fhir/Patient/p2/_history/1", ["foreign-2"]),
        ("patient=p2", []),
        ("subject=Patient/p2", []),
        ("patient=p1,http://example.org/fhir/Patient/p2", ["foreign-2", "local-1"]),
    ],
)
def test_absolute_references_match_only_their_server(query: str, expected: list[str]) -> None:
    status, _, bundle = search(query)
    assert status == 200
    assert sorted(ids_of(bundle)) == expected
    assert bundle["total"] == len(expected)
