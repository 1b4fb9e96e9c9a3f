"""SMART on FHIR end to end, no cloud: ``fhir-encounter serve --auth smart --dev-issuer-key KEY``
as a subprocess (its own DynamoDB Local, seeded: ``patient-0001`` is the seed patient) runs the
real authorizer function before the real handlers, with tokens minted by ``fhir-encounter token``
and signed by that key. Over HTTP on 127.0.0.1 only."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest

from fhir_encounter_tools.devserver.issuer import DevIssuer
from fhir_encounter_tools.ingest.seed import SEED_PATIENT
from tests.support import (
    ROOT,
    Api,
    Reply,
    Server,
    ids_of,
    issue,
    json_log_lines,
    link,
    run_cli,
    start_server,
    stop_server,
)

pytestmark = pytest.mark.integration

SEED_COUNT = 100
LOG_SECONDS = 10.0


@pytest.fixture(scope="module")
def key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("issuer") / "dev-issuer-key.pem"  # serve creates it


@pytest.fixture(scope="module")
def smart_server(key_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start_server(
        tmp_path_factory.mktemp("serve-smart"),
        "--auth", "smart", "--dev-issuer-key", str(key_file), "--seed-count", str(SEED_COUNT),
    )  # fmt: skip
    try:
        yield running
    finally:
        stop_server(running.process)


@pytest.fixture(scope="module")
def smart(smart_server: Server) -> Api:
    return Api(smart_server.base_url)


def token(
    key_file: Path,
    scope: str,
    patient: str | None = None,
    subject: str = "dev-user",
    fhir_user: str | None = None,
) -> str:
    arguments = ["token", "--dev-issuer-key", str(key_file), "--scope", scope, "--subject", subject]
    options = [
        *(["--patient", patient] if patient else []),
        *(["--fhir-user", fhir_user] if fhir_user else []),
    ]
    run = run_cli(*arguments, *options)
    assert run.status == 0, run.stderr
    return run.stdout.strip()


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


def subjects(bundle: dict[str, Any]) -> set[str]:
    return {entry["resource"]["subject"]["reference"] for entry in bundle.get("entry", [])}


def another_patient(api: Api, key_file: Path) -> tuple[str, str]:
    """A seeded Patient other than the seed patient, and the id of one of its Encounters."""
    reply = api.search("_count=100", bearer(token(key_file, "user/Encounter.rs")))
    for entry in reply.body["entry"]:
        reference = entry["resource"].get("subject", {}).get("reference", "")
        if reference.startswith("Patient/") and reference != f"Patient/{SEED_PATIENT}":
            return reference.removeprefix("Patient/"), entry["resource"]["id"]
    raise AssertionError("no other patient among the first 100 Encounters")


def walk(api: Api, query: str, headers: dict[str, str]) -> list[str]:
    """Every id of a search, following next links with the same token."""
    reply, found = api.search(query, headers), []
    for _ in range(100):
        assert reply.status == 200, reply.text
        found += ids_of(reply.body)
        following = link(reply.body, "next")
        if following is None:
            return found
        reply = api.request(following, headers)
    raise AssertionError("too many pages")


def audit_lines(server: Server, principal: str, count: int) -> list[dict[str, Any]]:
    """The audit records of ``principal`` on serve's stdout, once there are ``count`` of them."""
    deadline = time.monotonic() + LOG_SECONDS
    while True:
        records = [
            record
            for record in json_log_lines(server.stdout.read_text(errors="replace"))
            if record.get("service") == "fhir-encounter-audit" and record.get("principal") == principal
        ]
        if len(records) >= count or time.monotonic() > deadline:
            return records
        time.sleep(0.05)


def assert_unauthorized(reply: Reply, challenge: str) -> None:
    assert reply.status == 401, reply.text
    assert reply.headers["WWW-Authenticate"] == challenge
    assert issue(reply)["code"] == "login"


# ---- the key, the token command and the public routes ---------------------------------------------


def test_serve_creates_the_key_file_as_pkcs8_pem_with_mode_0600(smart_server: Server, key_file: Path) -> None:
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert key_file.read_text().startswith("-----BEGIN PRIVATE KEY-----\n")


def test_the_token_command_prints_one_token_signed_by_the_served_key(smart: Api, key_file: Path) -> None:
    run = run_cli("token", "--dev-issuer-key", str(key_file), "--scope", "user/Encounter.rs")
    assert run.status == 0
    assert run.stdout.count("\n") == 1
    printed = run.stdout.strip()
    reply = smart.request("/.well-known/jwks.json")  # public: no token
    assert reply.status == 200
    [key] = reply.body["keys"]
    assert jwt.get_unverified_header(printed)["kid"] == key["kid"]
    claims = jwt.decode(
        printed,
        jwt.PyJWK(key),
        algorithms=["RS256"],
        audience="urn:fhir-encounter:api",
        issuer="urn:fhir-encounter:dev-issuer",
    )
    assert claims["scope"] == "user/Encounter.rs"


def test_metadata_and_the_smart_configuration_are_public(smart: Api) -> None:
    metadata = smart.request("/metadata")
    assert metadata.status == 200, metadata.text
    assert metadata.body["rest"][0]["security"]["service"][0]["coding"][0]["code"] == "SMART-on-FHIR"
    configuration = smart.request("/.well-known/smart-configuration")
    assert configuration.status == 200, configuration.text
    assert "issuer" not in configuration.body  # the dev issuer is no https URL
    assert "sso-openid-connect" not in configuration.body["capabilities"]
    assert "permission-user" in configuration.body["capabilities"]
    assert configuration.body["jwks_uri"] == f"{smart.base_url}/.well-known/jwks.json"
    assert configuration.body["token_endpoint"].startswith(smart.base_url)


# ---- refused before the functions ------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/Encounter", "/Encounter/enc-00001"])
def test_without_a_token_it_is_401_with_a_bearer_challenge(smart: Api, path: str) -> None:
    assert_unauthorized(smart.request(path), "Bearer")


@pytest.mark.parametrize(
    "value",
    ["not-a-jwt", "e30.e30.e30", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."],
    ids=["junk", "empty", "alg-none"],
)
def test_a_bad_token_is_401_invalid_token(smart: Api, value: str) -> None:
    assert_unauthorized(smart.search("", bearer(value)), 'Bearer error="invalid_token"')


def test_an_expired_token_is_401_invalid_token(smart: Api, key_file: Path) -> None:
    issued = time.time() - 3600  # expired 59 minutes ago: well past the 60 s leeway
    expired = DevIssuer.from_key_file(key_file).token(scope="user/Encounter.rs", now=issued, expires_in=60)
    assert_unauthorized(smart.search("", bearer(expired)), 'Bearer error="invalid_token"')


def test_a_token_in_the_query_string_is_never_accepted(smart: Api, key_file: Path) -> None:
    value = token(key_file, "user/Encounter.rs")
    assert_unauthorized(smart.search(f"access_token={value}"), "Bearer")
    # Past the authorizer (it decides from the header alone), the functions refuse it.
    assert_unauthorized(
        smart.search(f"access_token={value}", bearer(value)), 'Bearer error="invalid_request"'
    )
    assert_unauthorized(
        smart.read("enc-00001?access_token=x", bearer(value)), 'Bearer error="invalid_request"'
    )
    assert smart.search("_count=1", bearer(value)).status == 200  # the same token, as it should be sent


YEAR_2999 = 32_503_680_000


@pytest.mark.parametrize("exp", [YEAR_2999, None], ids=["exp-in-2999", "a-day-and-10-minutes-ahead"])
def test_a_token_that_lives_too_long_is_401_invalid_token(
    smart: Api, key_file: Path, exp: int | None
) -> None:
    now = int(time.time())
    lifetime = (exp - now) if exp else 86_400 + 600
    long_lived = DevIssuer.from_key_file(key_file).token(
        scope="user/Encounter.rs", now=now, expires_in=lifetime
    )
    assert_unauthorized(smart.search("", bearer(long_lived)), 'Bearer error="invalid_token"')


@pytest.mark.parametrize(
    "scope",
    ["x/user/Encounter.rs", "patient/Encounter.rs/user/Encounter.rs", "openid\u00a0user/Encounter.rs"],
)
def test_a_string_that_is_not_a_smart_scope_is_403(smart: Api, key_file: Path, scope: str) -> None:
    minted = DevIssuer.from_key_file(key_file).token(scope=scope, patient=SEED_PATIENT)
    reply = smart.search("", bearer(minted))
    assert (reply.status, issue(reply)["code"]) == (403, "forbidden")


def test_a_token_without_a_granting_scope_is_403_naming_the_scope(smart: Api, key_file: Path) -> None:
    reply = smart.search("", bearer(token(key_file, "openid launch")))
    assert reply.status == 403
    found = issue(reply)
    assert found["code"] == "forbidden"
    assert "Encounter.s" in found["details"]["text"]


# ---- what a token sees ------------------------------------------------------------------------------


def test_a_patient_token_sees_exactly_its_own_encounters(smart: Api, key_file: Path) -> None:
    own = walk(smart, "_count=2", bearer(token(key_file, "patient/Encounter.rs", SEED_PATIENT)))
    everyone = bearer(token(key_file, "user/Encounter.rs"))
    expected = walk(smart, f"patient={SEED_PATIENT}&_count=2", everyone)
    assert own == expected
    assert len(own) >= 2


def test_a_patient_token_searching_another_patient_gets_an_empty_bundle(smart: Api, key_file: Path) -> None:
    other, _ = another_patient(smart, key_file)
    reply = smart.search(
        f"patient={other}&_total=accurate",
        bearer(token(key_file, "patient/Encounter.rs", SEED_PATIENT)),
    )
    assert reply.status == 200
    assert (reply.body["total"], reply.body.get("entry", [])) == (0, [])


def test_a_patient_token_reads_its_own_and_another_patients_is_404(smart: Api, key_file: Path) -> None:
    everyone = bearer(token(key_file, "user/Encounter.rs"))
    own_id = ids_of(smart.search(f"patient={SEED_PATIENT}&_count=1", everyone).body)[0]
    _, other_id = another_patient(smart, key_file)
    patient = bearer(token(key_file, "patient/Encounter.r", SEED_PATIENT))
    assert smart.read(own_id, patient).status == 200
    hidden, missing = smart.read(other_id, patient), smart.read("enc-does-not-exist", patient)
    assert (
        (hidden.status, issue(hidden)["code"])
        == (missing.status, issue(missing)["code"])
        == (404, "not-found")
    )
    assert smart.read(other_id, everyone).status == 200


def test_a_next_link_replayed_with_another_patients_token_never_shows_the_first_patients_data(
    smart: Api, key_file: Path
) -> None:
    first = smart.search("_count=1", bearer(token(key_file, "patient/Encounter.rs", SEED_PATIENT)))
    assert first.status == 200
    following = link(first.body, "next")
    assert following is not None
    other, _ = another_patient(smart, key_file)
    replay = smart.request(following, bearer(token(key_file, "patient/Encounter.rs", other)))
    if replay.status == 400:
        assert issue(replay)["code"] == "invalid"
    else:
        assert replay.status == 200, replay.text
        assert subjects(replay.body) <= {f"Patient/{other}"}


def test_a_user_token_sees_every_encounter(smart: Api, key_file: Path) -> None:
    reply = smart.search("_total=accurate&_count=1", bearer(token(key_file, "user/Encounter.rs")))
    assert reply.status == 200
    assert reply.body["total"] == SEED_COUNT


@pytest.mark.parametrize("absolute", [False, True], ids=["relative", "absolute"])
def test_a_user_token_whose_fhir_user_is_a_patient_sees_only_its_encounters(
    smart: Api, key_file: Path, absolute: bool
) -> None:
    fhir_user = f"{smart.base_url if absolute else ''}{'/' if absolute else ''}Patient/{SEED_PATIENT}"
    own = bearer(token(key_file, "user/*.read", fhir_user=fhir_user))  # no patient launch context
    everyone = bearer(token(key_file, "user/Encounter.rs"))
    expected = walk(smart, f"patient={SEED_PATIENT}&_count=5", everyone)
    assert walk(smart, "_count=5", own) == expected
    _, other_id = another_patient(smart, key_file)
    hidden = smart.read(other_id, own)
    assert (hidden.status, issue(hidden)["code"]) == (404, "not-found")


def test_a_smart_v1_user_read_scope_searches_too(smart: Api, key_file: Path) -> None:
    other, _ = another_patient(smart, key_file)
    reply = smart.search(f"patient={other}", bearer(token(key_file, "user/Encounter.read")))
    assert reply.status == 200
    assert subjects(reply.body) == {f"Patient/{other}"}


# ---- the audit trail ---------------------------------------------------------------------------------


def test_each_request_writes_one_audit_line_with_who_what_and_which_ids(
    smart: Api, smart_server: Server, key_file: Path
) -> None:
    principal = "auditor-7f3a"
    headers = bearer(token(key_file, "patient/Encounter.rs", SEED_PATIENT, subject=principal))
    search = smart.search("status=finished&_count=2&date=ge2000-01-01", headers)
    assert search.status == 200
    read_id = ids_of(search.body)[0] if ids_of(search.body) else "enc-00001"
    read = smart.read(read_id, headers)
    searched, was_read = audit_lines(smart_server, principal, 2)
    assert {
        name: searched[name] for name in ("principal", "client_id", "route", "parameters", "compartment")
    } == {
        "principal": principal,
        "client_id": "fhir-encounter-dev",
        "route": "GET /Encounter",
        "parameters": ["_count", "date", "status"],
        "compartment": f"Patient/{SEED_PATIENT}",
    }
    assert (searched["encounter_ids"], searched["status"]) == (ids_of(search.body), 200)
    assert {name: was_read[name] for name in ("route", "compartment", "encounter_ids", "status")} == {
        "route": "GET /Encounter/{id}",
        "compartment": f"Patient/{SEED_PATIENT}",
        "encounter_ids": [read_id] if read.status == 200 else [],
        "status": read.status,
    }
    text = json.dumps([searched, was_read])
    assert "finished" not in text  # parameter names only, never their values
    assert "ge2000" not in text
    assert "resourceType" not in text  # never a resource body


# ---- how to try it -----------------------------------------------------------------------------------


def test_the_startup_text_has_a_curl_line_that_works(smart_server: Server) -> None:
    [line] = [line for line in smart_server.stdout.read_text().splitlines() if line.startswith("Try SMART: ")]
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    result = subprocess.run(
        ["bash", "-c", f"{line.removeprefix('Try SMART: ')} --silent --show-error --fail"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    bundle = json.loads(result.stdout)
    assert bundle["resourceType"] == "Bundle"
    assert subjects(bundle) == {f"Patient/{SEED_PATIENT}"}


def test_open_serve_says_it_is_open_and_how_to_try_smart(server: Server) -> None:
    lines = server.stdout.read_text().splitlines()
    assert "Authorization: none (--auth none): every request is served, without a token" in lines
    assert any(
        line.startswith("Try SMART locally: ") and "serve --auth smart --dev-issuer-key" in line
        for line in lines
    )
    assert any(line.startswith("  then: curl ") and " token --dev-issuer-key " in line for line in lines)
