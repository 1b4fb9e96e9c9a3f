"""The read takes its id from API Gateway's decoded pathParameters, whatever the raw path holds."""

from __future__ import annotations

from fhir_encounter_tools.devserver.events import rest_api_event
from tests.support import Writer, encounter, invoke


def test_a_percent_encoded_id_in_the_path_reads_the_decoded_id(put: Writer) -> None:
    put(encounter("enc-1001"))
    event = rest_api_event(
        method="GET",
        path="/Encounter/enc%2D1001",
        resource="/Encounter/{id}",
        path_parameters={"id": "enc-1001"},
    )
    status, _, resource = invoke(event)
    assert (status, resource["id"]) == (200, "enc-1001")
