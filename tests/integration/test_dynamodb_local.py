"""DynamoDB Local, as the fixtures and `serve` start it, is reachable from this machine only."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

LISTEN = "0A"
# 127.0.0.1 in /proc/net/tcp, and as an IPv4-mapped address in /proc/net/tcp6.
LOOPBACK = {"0100007F", "0000000000000000FFFF00000100007F", "00000000000000000000000001000000"}


def listening_addresses(port: int) -> set[str]:
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == LISTEN and int(hex_port, 16) == port:
                found.add(address)
    return found


def test_dynamodb_local_listens_on_loopback_only(dynamodb_endpoint: str) -> None:
    port = int(dynamodb_endpoint.rsplit(":", 1)[1])
    addresses = listening_addresses(port)
    assert addresses, f"nothing listens on port {port}"
    assert addresses <= LOOPBACK, addresses
