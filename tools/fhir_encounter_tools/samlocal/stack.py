"""`sam local` on the built template against DynamoDB Local, as `make sam-local` and `make test-sam`
run it: Docker and the runtime image (``docker``), `sam build` for this machine's architecture,
DynamoDB Local on the Docker bridge's address (containers reach it as ``host.docker.internal``;
never every interface), the table created and seeded with the ``fhir-encounter`` commands, the
functions' env.json, and `sam local start-api` / `start-lambda` / `invoke`, each stopped by its pid.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fhir_encounter.config import ENVIRONMENT
from fhir_encounter_tools.cli import main as cli_main
from fhir_encounter_tools.devserver.dynamodb_local import LOOPBACK, dynamodb_local
from fhir_encounter_tools.devserver.server import DEFAULT_LOG_LEVEL, function_environment
from fhir_encounter_tools.samlocal.docker import (
    STAND_IN_LABEL,
    RuntimeImage,
    SamLocalError,
    Say,
    bridge_address,
    ensure_docker,
    ensure_runtime_image,
    lambda_architecture,
)
from fhir_encounter_tools.template import find_template, load_template

LOCAL_TABLE = "encounters"
SEED_COUNT = 500
CONTAINER_HOST = "host.docker.internal"  # what the function containers call the machine
BUILD_DIR = Path(".aws-sam") / "local" / "build"  # beside `make build`'s arm64 .aws-sam/build
READY_SECONDS = 300.0
STOP_SECONDS = 60.0
INVOKE_SECONDS = 300.0
_CONTAINER_ID = re.compile(r"SAM_CONTAINER_ID: ([0-9a-f]{12,64})")
_REQUEST_QUERY = re.compile(r'("[A-Z]+ [^ ?"]*)\?[^ "]*')  # "GET /Encounter?patient=... HTTP/1.1"
# DynamoDB Local takes any credentials; these keep a developer's real ones out of the containers.
LOCAL_AWS = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "SAM_CLI_TELEMETRY": "0",
}
FUNCTION_SETTINGS = frozenset(ENVIRONMENT.values())  # the variables the functions read
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True, slots=True)
class SamLocal:
    """A prepared `sam local`: built for ``architecture``, with ``image``, and DynamoDB Local at
    ``dynamodb_endpoint`` (from this machine) and ``container_endpoint`` (from the containers)."""

    sam: str
    project: Path
    architecture: str
    image: RuntimeImage
    dynamodb_endpoint: str
    container_endpoint: str
    functions: tuple[str, ...]

    @property
    def built_template(self) -> Path:
        return self.project / BUILD_DIR / "template.yaml"

    def options(self, env_file: Path, fhir_base_url: str | None = None) -> list[str]:
        """What every `sam local` command takes here: the built template, the host's architecture,
        the functions' environment, the route to DynamoDB Local, and no pull of the stand-in."""
        overrides = f"Architecture={self.architecture}"
        if fhir_base_url:
            overrides += f" FhirBaseUrl={fhir_base_url}"
        return [
            "--template",
            str(self.built_template),
            "--parameter-overrides",
            overrides,
            "--env-vars",
            str(env_file),
            "--add-host",
            f"{CONTAINER_HOST}:host-gateway",
            *(["--skip-pull-image"] if self.image.stand_in else []),
        ]

    def write_env_file(
        self, path: Path, table: str, log_level: str = DEFAULT_LOG_LEVEL, cors_origins: str = ""
    ) -> Path:
        """The functions' env.json: the settings `make run` gives them, pointed at DynamoDB Local
        through the bridge (tracing and metrics off, a fresh cursor key), with the template's
        default AuthMode (iam: `sam local` checks no signatures; AWS_SAM_LOCAL is set there);
        ``cors_origins`` as CorsAllowedOrigins (serve's --cors-origin)."""
        template = load_template(self.project / "template.yaml")
        environment = function_environment(
            template,
            endpoint_url=self.container_endpoint,
            table_name=table,
            base_url=None,
            log_level=log_level,
        )
        # Required (a function without it refuses to start): the template's AuthMode, as deployed.
        environment["AUTH_MODE"] = str(template["Parameters"]["AuthMode"]["Default"])
        if cors_origins:
            environment["CORS_ALLOWED_ORIGINS"] = cors_origins
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.chmod(0o600)  # before the cursor key is written into it
        path.write_text(json.dumps(dict.fromkeys(self.functions, environment), indent=2) + "\n")
        return path

    def invoke(self, function: str, event: Path, env_file: Path) -> dict[str, Any]:
        """``sam local invoke FUNCTION -e EVENT``: the function's result (a proxy response)."""
        result = subprocess.run(  # noqa: S603
            [self.sam, "local", "invoke", function, "--event", str(event), *self.options(env_file)],
            cwd=self.project,
            env=sam_environment(),
            capture_output=True,
            text=True,
            timeout=INVOKE_SECONDS,
            check=False,
        )
        if result.returncode != 0:
            raise SamLocalError(f"sam local invoke {function} failed:\n{result.stderr[-2000:]}")
        lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
        if not lines:
            raise SamLocalError(f"sam local invoke {function} printed no result:\n{result.stderr[-2000:]}")
        response: dict[str, Any] = json.loads(lines[-1])
        return response

    @contextmanager
    def start_api(
        self, env_file: Path, port: int, log: Path, fhir_base_url: str | None = None
    ) -> Iterator[str]:
        """``sam local start-api`` on 127.0.0.1:``port`` with warm containers; yields its base URL
        once /metadata answers 200."""
        base_url = f"http://{LOOPBACK}:{port}"
        command = self._warm_server("start-api", port, self.options(env_file, fhir_base_url))
        with self._server(command, log) as process:
            _wait_until_ok(process, f"{base_url}/metadata", log)
            yield base_url

    @contextmanager
    def start_lambda(self, env_file: Path, port: int, log: Path) -> Iterator[str]:
        """``sam local start-lambda`` on 127.0.0.1:``port`` with warm containers: the Lambda Invoke
        API for boto3; yields its endpoint URL."""
        endpoint = f"http://{LOOPBACK}:{port}"
        command = self._warm_server("start-lambda", port, self.options(env_file))
        with self._server(command, log) as process:
            _wait_until_ok(process, f"{endpoint}/2015-03-31/functions", log, any_status=True)
            yield endpoint

    def _warm_server(self, subcommand: str, port: int, options: list[str]) -> list[str]:
        """``sam local <subcommand>`` on 127.0.0.1:``port``, its containers started up front."""
        return [
            self.sam,
            "local",
            subcommand,
            "--host",
            LOOPBACK,
            "--port",
            str(port),
            "--warm-containers",
            "EAGER",
            *options,
        ]

    @contextmanager
    def _server(self, command: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
        """A `sam local` server, its output appended to ``log`` without query strings (they hold
        patient ids), stopped with SIGINT by its pid. It does not remove every container it
        started (those made for a first request beside the warm ones stay up), so afterwards each
        container its output names (``SAM_CONTAINER_ID``) is removed, and no other."""
        log.parent.mkdir(parents=True, exist_ok=True)
        process = subprocess.Popen(  # noqa: S603
            command,
            cwd=self.project,
            env=sam_environment(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        containers: set[str] = set()
        copier = threading.Thread(target=_copy_output, args=(process, log, containers), daemon=True)
        copier.start()
        try:
            yield process
        finally:
            stop_process(process)
            copier.join(timeout=STOP_SECONDS)
            if containers:
                _docker("rm", "--force", *sorted(containers))


def sam_environment() -> dict[str, str]:
    """The environment of `sam` commands: python3.13 (this one) first on PATH for `sam build`,
    local credentials and region, no telemetry, and none of the functions' settings (`sam local`
    would hand a function any that the shell has; env.json alone sets them)."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    inherited = {
        name: value
        for name, value in os.environ.items()
        if name not in FUNCTION_SETTINGS and not name.startswith("POWERTOOLS_")
    }
    return {**inherited, **LOCAL_AWS, "PATH": path}


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGINT (Ctrl-C, which `sam local` cleans up after), then SIGKILL; by the process's pid."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def sam_build(sam: str, project: Path, architecture: str, say: Say) -> None:
    """``sam build`` of template.yaml for ``architecture`` into .aws-sam/local/build."""
    started = time.monotonic()
    result = subprocess.run(  # noqa: S603
        [
            sam,
            "build",
            "--template",
            str(project / "template.yaml"),
            "--build-dir",
            str(project / BUILD_DIR),
            "--parameter-overrides",
            f"Architecture={architecture}",
        ],
        cwd=project,
        env=sam_environment(),
        capture_output=True,
        text=True,
        check=False,
        timeout=1200,
    )
    if result.returncode != 0:
        raise SamLocalError(f"sam build failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    say(f"sam build ({architecture}) into {BUILD_DIR}: {time.monotonic() - started:.0f} s")


def function_names(template: Mapping[str, Any]) -> tuple[str, ...]:
    """The functions every deployment has (the smart-only authorizer has a Condition)."""
    return tuple(
        name
        for name, resource in template["Resources"].items()
        if resource.get("Type") == "AWS::Serverless::Function" and "Condition" not in resource
    )


@contextmanager
def sam_local(sam: str, say: Say, seed_count: int = SEED_COUNT, *, build: bool = True) -> Iterator[SamLocal]:
    """Docker, the runtime image, `sam build` (unless ``build`` is False and a build is there),
    DynamoDB Local on the bridge with the table created and seeded (``seed_count`` synthetic
    Encounters); DynamoDB Local stops on exit."""
    project = find_template().parent
    architecture = lambda_architecture()
    ensure_docker(say)
    started = time.monotonic()
    image = ensure_runtime_image(architecture, say)
    say(f"Runtime image ready in {time.monotonic() - started:.0f} s")
    if build or not (project / BUILD_DIR / "template.yaml").is_file():
        sam_build(sam, project, architecture, say)
    else:
        say(f"sam build: reusing {BUILD_DIR}")
    bridge = bridge_address()
    host = bridge or LOOPBACK  # Docker Desktop: host.docker.internal reaches the loopback
    try:
        with dynamodb_local(host=host) as endpoint:
            port = endpoint.rpartition(":")[2]
            say(f"DynamoDB Local on {endpoint} (in memory; containers reach it as {CONTAINER_HOST}:{port})")
            _cli("create-table", "--endpoint-url", endpoint, "--table", LOCAL_TABLE)
            if seed_count:
                _cli("seed", "--endpoint-url", endpoint, "--table", LOCAL_TABLE, "--count", str(seed_count))
            yield SamLocal(
                sam=sam,
                project=project,
                architecture=architecture,
                image=image,
                dynamodb_endpoint=endpoint,
                container_endpoint=f"http://{CONTAINER_HOST}:{port}",
                functions=function_names(load_template(project / "template.yaml")),
            )
    finally:
        if image.stand_in:  # each `sam local` rebuilds its image on the stand-in: drop the replaced ones
            _docker(
                "image",
                "prune",
                "--force",
                "--filter",
                "dangling=true",
                "--filter",
                f"label={STAND_IN_LABEL}",
            )


def _cli(*argv: str) -> None:
    status = cli_main(list(argv))
    if status != 0:
        raise SamLocalError(f"fhir-encounter {argv[0]} failed (exit status {status})")


def _copy_output(process: subprocess.Popen[bytes], log: Path, containers: set[str]) -> None:
    """``process``'s output into ``log``, each request line's query string cut (Werkzeug logs it
    whole); the ids of the containers it names go into ``containers``."""
    if process.stdout is None:
        return
    with log.open("a", encoding="utf-8") as output:
        for raw in process.stdout:
            line = raw.decode(errors="replace")
            containers.update(_CONTAINER_ID.findall(line))
            output.write(without_query_strings(line))
            output.flush()


def without_query_strings(line: str) -> str:
    """A log line with each quoted request line's query string replaced by ``?...``."""
    return _REQUEST_QUERY.sub(r"\1?...", line)


def _docker(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=False)  # noqa: S603, S607


def _wait_until_ok(
    process: subprocess.Popen[bytes], url: str, log: Path, *, any_status: bool = False
) -> None:
    """Until ``url`` answers 200 (any HTTP status with ``any_status``); SamLocalError when the
    server exits first or takes longer than READY_SECONDS."""
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SamLocalError(f"sam local exited ({process.returncode}) before {url} answered; see {log}")
        try:
            with _OPENER.open(url, timeout=30) as response:
                if response.status == 200:
                    return
        except urllib.error.HTTPError as error:
            error.close()
            if any_status:
                return
        except OSError:
            pass
        time.sleep(0.5)
    stop_process(process)
    raise SamLocalError(f"{url} did not answer within {READY_SECONDS:.0f} s; see {log}")
