"""DynamoDB Local for `sam local` listens on the Docker bridge's address only: the containers
reach it there, and neither the loopback nor any other interface answers."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import pytest

from fhir_encounter_tools.samlocal.docker import bridge_address
from fhir_encounter_tools.samlocal.stack import SamLocal


def test_dynamodb_local_listens_on_the_bridge_address_only(local: SamLocal) -> None:
    endpoint = urlsplit(local.dynamodb_endpoint)
    assert endpoint.hostname == bridge_address()
    assert endpoint.port is not None
    with socket.create_connection((endpoint.hostname, endpoint.port), timeout=5):
        pass
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", endpoint.port), timeout=5)
