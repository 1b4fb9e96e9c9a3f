"""A browser SMART app, for real: headless Chromium loads a page from one 127.0.0.1 origin whose
script calls ``fhir-encounter serve --auth smart --cors-origin <that origin>`` on another port with
``fetch()`` and a bearer token (so the browser sends a CORS preflight first), and writes what it got
into the page; the test reads the DOM back. A page from an origin not allowed is blocked."""

from __future__ import annotations

import html
import json
import os
import re
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from fhir_encounter_tools.devserver.dynamodb_local import free_port
from fhir_encounter_tools.ingest.seed import SEED_PATIENT
from tests.integration.chromium import chromium, dump_dom
from tests.support import Api, Server, ids_of, run_cli, start_server, stop_server

pytestmark = pytest.mark.integration

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>SMART app</title></head>
<body><pre id="result">pending</pre>
<script>
(async () => {
  const out = document.getElementById("result");
  try {
    const headers = {"Authorization": "Bearer __TOKEN__", "Accept": "application/fhir+json"};
    const search = await fetch("__API__/Encounter?patient=__PATIENT__&_count=5", {headers});
    const bundle = await search.json();
    const first = bundle.entry[0].resource.id;
    const read = await fetch("__API__/Encounter/" + first, {headers});
    const encounter = await read.json();
    out.textContent = JSON.stringify({
      search_status: search.status, total: bundle.total, ids: bundle.entry.map(e => e.resource.id),
      read_status: read.status, read_id: encounter.id, etag: read.headers.get("ETag"),
    });
  } catch (error) {
    out.textContent = JSON.stringify({blocked: String(error)});
  }
})();
</script></body></html>
"""
# A page that asks why each 401 came: serve's own (no token, as API Gateway's) and a function's
# (a token in the URL); a browser app reads WWW-Authenticate only when it is exposed.
CHALLENGES = (
    PAGE.split("<script>", 1)[0]
    + """<script>
(async () => {
  const out = document.getElementById("result");
  const read = async (url, init) => {
    const answer = await fetch(url, init);
    return [answer.status, answer.headers.get("WWW-Authenticate")];
  };
  try {
    out.textContent = JSON.stringify({
      no_token: await read("__API__/Encounter?patient=__PATIENT__", {}),
      token_in_url: await read("__API__/Encounter?access_token=x",
                               {headers: {"Authorization": "Bearer __TOKEN__"}}),
    });
  } catch (error) {
    out.textContent = JSON.stringify({blocked: String(error)});
  }
})();
</script></body></html>
"""
)


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """No log lines on the test's output."""


@pytest.fixture(scope="module")
def browser() -> str:
    path, reason = chromium()
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the browser test must run under CI=true: {reason}")
        pytest.skip(reason)
    return path


@pytest.fixture(scope="module")
def key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("issuer") / "dev-issuer-key.pem"


def token(key_file: Path) -> str:
    arguments = ["--dev-issuer-key", str(key_file), "--scope", "patient/Encounter.rs"]
    run = run_cli("token", *arguments, "--patient", SEED_PATIENT)
    assert run.status == 0, run.stderr
    return run.stdout.strip()


@pytest.fixture(scope="module")
def page_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def smart_server(
    key_file: Path, page_port: int, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    running = start_server(
        tmp_path_factory.mktemp("serve-browser"),
        "--auth", "smart", "--dev-issuer-key", str(key_file), "--seed-count", "100",
        "--cors-origin", f"http://127.0.0.1:{page_port}",
    )  # fmt: skip
    try:
        yield running
    finally:
        stop_server(running.process)


def serve_page(folder: Path, port: int) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", port), partial(_Quiet, directory=str(folder)))
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


@pytest.fixture(scope="module")
def pages(
    smart_server: Server, key_file: Path, page_port: int, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    """(the allowed origin, another origin), each serving app.html and challenges.html."""
    folder = tmp_path_factory.mktemp("pages")
    for name, page in (("app.html", PAGE), ("challenges.html", CHALLENGES)):
        text = page.replace("__API__", smart_server.base_url).replace("__PATIENT__", SEED_PATIENT)
        (folder / name).write_text(text.replace("__TOKEN__", token(key_file)))
    allowed, other = serve_page(folder, page_port), serve_page(folder, free_port())
    try:
        yield (f"http://127.0.0.1:{allowed.server_port}", f"http://127.0.0.1:{other.server_port}")
    finally:
        for server in (allowed, other):
            server.shutdown()
            server.server_close()


def result_of(dom: str) -> dict[str, Any]:
    found = re.search(r'<pre id="result">(.*?)</pre>', dom, re.DOTALL)
    assert found is not None, dom[:2000]
    text = html.unescape(found[1])
    assert text != "pending", "the page's script did not finish"
    parsed: dict[str, Any] = json.loads(text)
    return parsed


def test_a_page_of_an_allowed_origin_searches_and_reads_with_a_bearer_token(
    browser: str, pages: tuple[str, str], smart_server: Server, key_file: Path, tmp_path: Path
) -> None:
    result = result_of(dump_dom(browser, f"{pages[0]}/app.html", tmp_path / "profile"))
    expected = Api(smart_server.base_url).search(
        f"patient={SEED_PATIENT}&_count=5", {"Authorization": f"Bearer {token(key_file)}"}
    )
    assert expected.status == 200
    assert result["search_status"] == 200
    assert result["total"] == expected.body["total"] > 0
    assert result["ids"] == ids_of(expected.body)
    assert (result["read_status"], result["read_id"]) == (200, result["ids"][0])
    assert result["etag"] == 'W/"1"'  # exposed (Access-Control-Expose-Headers)


def test_a_page_of_another_origin_is_blocked(browser: str, pages: tuple[str, str], tmp_path: Path) -> None:
    result = result_of(dump_dom(browser, f"{pages[1]}/app.html", tmp_path / "profile"))
    assert "blocked" in result, result
    assert "TypeError" in result["blocked"]


def test_a_page_of_an_allowed_origin_reads_why_it_got_a_401(
    browser: str, pages: tuple[str, str], tmp_path: Path
) -> None:
    result = result_of(dump_dom(browser, f"{pages[0]}/challenges.html", tmp_path / "profile"))
    assert result == {
        "no_token": [401, "Bearer"],
        "token_in_url": [401, 'Bearer error="invalid_request"'],
    }
