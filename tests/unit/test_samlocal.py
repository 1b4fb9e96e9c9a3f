"""The `sam local` setup's pure parts: the options every `sam local` command gets, the functions'
env.json, and the image and architecture names (the setup itself runs in tests/sam)."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from fhir_encounter_tools.samlocal import docker
from fhir_encounter_tools.samlocal.docker import RuntimeImage, image_name
from fhir_encounter_tools.samlocal.stack import (
    SamLocal,
    function_names,
    sam_environment,
    without_query_strings,
)
from fhir_encounter_tools.template import load_template
from tests.support import ROOT


def prepared(stand_in: bool) -> SamLocal:
    return SamLocal(
        sam="sam",
        project=ROOT,
        architecture="x86_64",
        image=RuntimeImage(image_name("x86_64"), stand_in),
        dynamodb_endpoint="http://172.17.0.1:8123",
        container_endpoint="http://host.docker.internal:8123",
        functions=function_names(load_template(ROOT / "template.yaml")),
    )


def test_the_image_is_the_one_sam_wants_for_python_3_13() -> None:
    assert image_name("x86_64") == "public.ecr.aws/lambda/python:3.13-x86_64"
    assert image_name("arm64") == "public.ecr.aws/lambda/python:3.13-arm64"


def test_every_function_but_the_smart_only_authorizer_gets_an_environment() -> None:
    names = function_names(load_template(ROOT / "template.yaml"))
    assert names == ("ReadEncounterFunction", "SearchEncountersFunction", "CapabilityStatementFunction")


@pytest.mark.parametrize("stand_in", [True, False])
def test_sam_local_runs_the_built_template_for_the_host_and_reaches_dynamodb_local_by_name(
    stand_in: bool,
) -> None:
    options = prepared(stand_in).options(Path("/tmp/env.json"), "http://127.0.0.1:3000")
    assert options[:8] == [
        "--template",
        str(ROOT / ".aws-sam" / "local" / "build" / "template.yaml"),
        "--parameter-overrides",
        "Architecture=x86_64 FhirBaseUrl=http://127.0.0.1:3000",
        "--env-vars",
        "/tmp/env.json",
        "--add-host",
        "host.docker.internal:host-gateway",
    ]
    assert options[8:] == (["--skip-pull-image"] if stand_in else [])
    assert "--docker-network" not in options


def test_the_env_file_points_every_function_at_dynamodb_local_through_the_bridge(tmp_path: Path) -> None:
    path = prepared(True).write_env_file(tmp_path / "env.json", "encounters")
    environments = json.loads(path.read_text())
    assert list(environments) == [
        "ReadEncounterFunction",
        "SearchEncountersFunction",
        "CapabilityStatementFunction",
    ]
    for environment in environments.values():
        assert environment["DYNAMODB_ENDPOINT_URL"] == "http://host.docker.internal:8123"
        assert environment["ENCOUNTER_TABLE"] == "encounters"
        assert len(environment["CURSOR_SECRET"]) >= 32
        assert (environment["POWERTOOLS_TRACE_DISABLED"], environment["POWERTOOLS_METRICS_DISABLED"]) == (
            "true",
            "true",
        )
        assert "FHIR_BASE_URL" not in environment  # links follow the request, or FhirBaseUrl
        assert environment["AUTH_MODE"] == "iam"  # required; the template's default
        assert all(isinstance(value, str) for value in environment.values())
    assert path.stat().st_mode & 0o777 == 0o600


ALL = ("docker", "dockerd", "apt-get")


@pytest.mark.parametrize(
    ("euid", "running", "found", "expected"),
    [
        (1000, True, ALL, None),
        (0, False, ALL, None),  # root starts dockerd itself
        (0, False, ("apt-get",), None),  # root installs docker.io first
        (0, False, (), "Docker is not installed and there is no apt-get to install it"),
        (1000, False, ALL, "Docker is not running, and only root may install or start it here"),
        (1000, False, ("apt-get",), "Docker is not installed, and only root may install or start it here"),
    ],
)
def test_docker_can_be_had_when_it_runs_or_as_root(
    monkeypatch: pytest.MonkeyPatch, euid: int, running: bool, found: tuple[str, ...], expected: str | None
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: euid)
    monkeypatch.setattr(docker, "docker_running", lambda: running)
    monkeypatch.setattr(shutil, "which", lambda name: f"/usr/bin/{name}" if name in found else None)
    reason = docker.unavailable_reason()
    if expected is None:
        assert reason is None
    else:
        assert reason is not None
        assert reason.startswith(expected)


def test_sam_local_request_lines_are_logged_without_their_query_strings() -> None:
    line = (
        '127.0.0.1 - - [26/Nov/2026 14:59:57] "GET /Encounter?patient=patient-0001&_count=6 HTTP/1.1" 200 -\n'
    )
    assert (
        without_query_strings(line)
        == '127.0.0.1 - - [26/Nov/2026 14:59:57] "GET /Encounter?... HTTP/1.1" 200 -\n'
    )
    assert (
        without_query_strings('"GET /Encounter/enc-1 HTTP/1.1" 200 -')
        == '"GET /Encounter/enc-1 HTTP/1.1" 200 -'
    )


def test_sam_gets_none_of_the_functions_settings_from_the_shell(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENCOUNTER_TABLE", "from-the-shell")
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "DEBUG")
    environment = sam_environment()
    assert "ENCOUNTER_TABLE" not in environment
    assert "POWERTOOLS_LOG_LEVEL" not in environment
    assert environment["AWS_ACCESS_KEY_ID"] == "local"
    assert environment["PATH"].split(os.pathsep)[0] == str(Path(sys.executable).parent)
