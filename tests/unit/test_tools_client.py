"""The operator tools' DynamoDB client: dummy credentials and region for a local endpoint only,
AWS's own settings otherwise. Creating a client sends no request."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import NoRegionError

from fhir_encounter.store.dynamodb import LOCAL_CREDENTIALS, LOCAL_REGION
from fhir_encounter_tools.tables import tools_client


def signing_key(client: Any) -> str:
    """The access key id the client signs its requests with."""
    key: str = client._request_signer._credentials.access_key
    return key


@pytest.fixture
def no_aws_setup(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_DEFAULT_REGION",
        "AWS_REGION",
        "AWS_PROFILE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.mark.usefixtures("no_aws_setup")
def test_an_endpoint_without_aws_setup_gets_dummy_credentials_and_a_region() -> None:
    client = tools_client("http://127.0.0.1:8000")
    assert client.meta.endpoint_url == "http://127.0.0.1:8000"
    assert client.meta.region_name == LOCAL_REGION
    assert signing_key(client) == LOCAL_CREDENTIALS["aws_access_key_id"]


@pytest.mark.usefixtures("no_aws_setup")
def test_aws_without_a_region_is_not_guessed() -> None:
    with pytest.raises(NoRegionError):
        tools_client(None)


def test_configured_credentials_and_region_are_kept_for_an_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    client = tools_client("http://127.0.0.1:8000")
    assert client.meta.region_name == "eu-west-1"
    assert signing_key(client) == "testing"  # conftest's
