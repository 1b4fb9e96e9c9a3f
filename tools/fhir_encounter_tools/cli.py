"""The ``fhir-encounter`` command (also ``python -m fhir_encounter_tools``): create-table, load,
reindex, seed, serve and token. One line on stderr per failure, never a traceback; exit 0 all loaded,
1 some rejected or failed, 2 usage error. ``fhir-encounter COMMAND --help`` lists the options."""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from botocore.utils import is_valid_endpoint_url, is_valid_ipv6_endpoint_url

from fhir_encounter.access import AuthMode
from fhir_encounter.cors import CorsOriginError, CorsPolicy
from fhir_encounter.references import is_fhir_id
from fhir_encounter.search.parameters import value_paths
from fhir_encounter.store.writer import EncounterWriter
from fhir_encounter_tools.devserver.issuer import (
    DEFAULT_CLIENT_ID,
    DEFAULT_EXPIRES_IN,
    DEFAULT_SUBJECT,
    DEV_AUDIENCE,
    DEV_ISSUER,
    DevIssuer,
    IssuerKeyError,
)
from fhir_encounter_tools.devserver.server import DEFAULT_LOG_LEVEL, serve
from fhir_encounter_tools.ingest.loader import LoadReport, load_paths, load_resources, source_files
from fhir_encounter_tools.ingest.reindex import reindex
from fhir_encounter_tools.ingest.seed import SEED, SEED_PATIENT, synthetic_encounters
from fhir_encounter_tools.reporting import PROGRAM, error_message, print_rejection
from fhir_encounter_tools.tables import create_table, require_table, tools_client

DEFAULT_TABLE = "encounters"
TABLE_ENV = "ENCOUNTER_TABLE"
ENDPOINT_ENV = "DYNAMODB_ENDPOINT_URL"
EXIT_OK = 0
EXIT_FAILED = 1  # some Encounters rejected, or the command could not finish
EXIT_USAGE = 2
MAX_TOKEN_SECONDS = 86400
_TABLE_NAME = re.compile(r"[A-Za-z0-9_.\-]{3,255}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(argv)
        args.table = args.table or os.environ.get(TABLE_ENV) or DEFAULT_TABLE
        if not args.endpoint_url and (from_environment := os.environ.get(ENDPOINT_ENV)):
            args.endpoint_url = _environment_endpoint_url(parser, from_environment)
        if args.command is _serve and args.endpoint_url and (args.data_dir or args.dynamodb_port):
            parser.error(
                f"serve: --data-dir and --dynamodb-port are for the DynamoDB Local it starts "
                f"without --endpoint-url or ${ENDPOINT_ENV}"
            )
        if args.command is _serve and (args.auth == AuthMode.SMART) != (args.dev_issuer_key is not None):
            parser.error(
                "serve: --auth smart needs --dev-issuer-key PATH, and that key is for --auth smart only"
            )
    except SystemExit as stop:  # argparse: 2 on a usage error (printed already), 0 after --help
        return stop.code if isinstance(stop.code, int) else EXIT_USAGE
    command: Callable[[argparse.Namespace], int] = args.command
    try:
        return command(args)
    except KeyboardInterrupt:
        print(f"{PROGRAM}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        message = error_message(error, endpoint_url=args.endpoint_url, table=args.table)
        if message is None:
            raise
        print(f"{PROGRAM}: error: {message}", file=sys.stderr)
        return EXIT_FAILED


def _create_table(args: argparse.Namespace) -> int:
    client = tools_client(args.endpoint_url)
    created = create_table(client, args.table)
    state = "created" if created else "already exists"
    where = f"at {args.endpoint_url}" if args.endpoint_url else f"in AWS {client.meta.region_name}"
    print(f"table '{args.table}' {state} {where}")
    return EXIT_OK


def _load(args: argparse.Namespace) -> int:
    files = source_files(args.paths)
    writer = _writer(args)
    with _summary_if_stopped() as report:
        load_paths(files, writer, on_reject=print_rejection, progress=sys.stderr, report=report)
    return _finish(report)


def _reindex(args: argparse.Namespace) -> int:
    writer = _writer(args)
    with _summary_if_stopped() as report:
        reindex(
            tools_client(args.endpoint_url),
            args.table,
            writer,
            on_reject=print_rejection,
            progress=sys.stderr,
            report=report,
        )
    note = "; the table is indexed for every search parameter" if not report.failed else ""
    return _finish(report, note)


def _seed(args: argparse.Namespace) -> int:
    writer = _writer(args)
    resources = synthetic_encounters(args.count, args.random_seed)
    with _summary_if_stopped() as report:
        load_resources(
            resources,
            writer,
            source="seed",
            total=args.count,
            on_reject=print_rejection,
            progress=sys.stderr,
            report=report,
        )
    example = f"; e.g. patient={SEED_PATIENT}" if args.count else ""
    return _finish(report, f" from random seed {args.random_seed}{example}")


def _serve(args: argparse.Namespace) -> int:
    return serve(
        host=args.host,
        port=args.port,
        endpoint_url=args.endpoint_url,
        table_name=args.table,
        seed_count=args.seed_count,
        log_level=args.log_level,
        data_dir=args.data_dir,
        dynamodb_port=args.dynamodb_port,
        auth=AuthMode(args.auth),
        dev_issuer_key=args.dev_issuer_key,
        cors=CorsPolicy.parse(args.cors_origin or []),
    )


def _token(args: argparse.Namespace) -> int:
    """An access token of the dev issuer on stdout, and nothing else there."""
    created = not args.dev_issuer_key.exists()
    try:
        issuer = DevIssuer.from_key_file(args.dev_issuer_key)
    except IssuerKeyError as error:
        print(f"{PROGRAM}: error: {error}", file=sys.stderr)
        return EXIT_FAILED
    if created:
        print(f"created the dev issuer key {args.dev_issuer_key} (mode 0600)", file=sys.stderr)
    token = issuer.token(
        scope=args.scope,
        patient=args.patient,
        expires_in=args.expires_in,
        client_id=args.client_id,
        subject=args.subject,
        fhir_user=args.fhir_user,
    )
    print(token)
    return EXIT_OK


def _writer(args: argparse.Namespace) -> EncounterWriter:
    client = tools_client(args.endpoint_url)
    require_table(client, args.table)
    return EncounterWriter(client, args.table, value_paths())


@contextmanager
def _summary_if_stopped() -> Iterator[LoadReport]:
    """A report for a load; if the load stops with an error, its summary (what was written so far)
    is printed before the error is, so that an operator knows where it stopped."""
    report = LoadReport()
    try:
        yield report
    except BaseException:
        print(f"{report.summary()}; stopped early", flush=True)
        raise


def _finish(report: LoadReport, note: str = "") -> int:
    print(report.summary() + note)
    return EXIT_FAILED if report.failed else EXIT_OK


# ---- arguments ---------------------------------------------------------------------------------


def _endpoint_url(text: str) -> str:
    """An http:// or https:// URL with a host, as botocore takes it (it raises ValueError otherwise)."""
    try:
        parts = urlsplit(text)
        valid = (
            parts.scheme in ("http", "https")
            and (is_valid_endpoint_url(text) or is_valid_ipv6_endpoint_url(text))
            and (parts.port is None or parts.port > 0)  # .port: ValueError unless a number to 65535
        )
    except ValueError:
        valid = False
    if not valid:
        raise argparse.ArgumentTypeError("must be an http:// or https:// URL with a host")
    return text


def _environment_endpoint_url(parser: argparse.ArgumentParser, text: str) -> str:
    try:
        return _endpoint_url(text)
    except argparse.ArgumentTypeError as error:
        parser.error(f"${ENDPOINT_ENV} {error}")  # exits 2


def _table_name(text: str) -> str:
    if _TABLE_NAME.fullmatch(text) is None:
        raise argparse.ArgumentTypeError("a DynamoDB table name is 3 to 255 of A-Z a-z 0-9 _ - .")
    return text


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError("must be a whole number, 0 or more")
    return value


def _cors_origins(text: str) -> str:
    try:
        CorsPolicy.parse(text)
    except CorsOriginError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def _port(text: str) -> int:
    value = _count(text)
    if value > 65535:
        raise argparse.ArgumentTypeError("must be a port number, 0 to 65535")
    return value


def _dynamodb_port(text: str) -> int:
    value = _count(text)
    if not 0 < value <= 65535:
        raise argparse.ArgumentTypeError("must be a port number, 1 to 65535")
    return value


def _fhir_id(text: str) -> str:
    if not is_fhir_id(text):
        raise argparse.ArgumentTypeError("a FHIR id is 1 to 64 of A-Z a-z 0-9 - .")
    return text


def _seconds(text: str) -> int:
    value = _count(text)
    if not 0 < value <= MAX_TOKEN_SECONDS:
        raise argparse.ArgumentTypeError(f"must be 1 to {MAX_TOKEN_SECONDS} seconds")
    return value


def _text(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return text


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROGRAM,
        description="Operator and developer tools of the FHIR Encounter API.",
        epilog="Exit status: 0 all loaded, 1 some rejected or failed, 2 usage error.",
    )
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")

    def command(
        name: str, run: Callable[[argparse.Namespace], int], text: str, otherwise: str = "else AWS"
    ) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=text, description=text)
        sub.set_defaults(command=run)
        sub.add_argument(
            "--endpoint-url",
            type=_endpoint_url,
            metavar="URL",
            help=f"DynamoDB endpoint, e.g. http://127.0.0.1:8000 (default: ${ENDPOINT_ENV}, {otherwise})",
        )
        sub.add_argument(
            "--table",
            type=_table_name,
            metavar="NAME",
            help=f"table name (default: ${TABLE_ENV}, else {DEFAULT_TABLE})",
        )
        return sub

    command(
        "create-table", _create_table, "Create the table and its indexes from template.yaml (idempotent)."
    )
    load = command("load", _load, "Load Encounters from FHIR .json (Encounter or Bundle) and .ndjson files.")
    load.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="a file, or a directory of them")
    command(
        "reindex",
        _reindex,
        "Link every stored Encounter in the value index, then mark the table indexed (after an upgrade).",
    )
    seed = command("seed", _seed, "Write realistic synthetic Encounters, the same ones for the same seed.")
    seed.add_argument("--count", type=_count, default=500, metavar="N", help="how many (default: 500)")
    seed.add_argument(
        "--random-seed", type=int, default=SEED, metavar="S", help=f"random seed (default: {SEED})"
    )
    serve = command(
        "serve",
        _serve,
        "Serve the API locally, as API Gateway would (starts DynamoDB Local without a URL).",
        otherwise="else it starts its own DynamoDB Local on 127.0.0.1",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    serve.add_argument("--port", type=_port, default=3000, help="port to listen on (default: 3000)")
    serve.add_argument(
        "--seed-count",
        type=_count,
        default=500,
        metavar="N",
        help="Encounters to seed into a new or empty table of the DynamoDB Local it starts (default: 500)",
    )
    serve.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        help="keep the data of the DynamoDB Local it starts in DIR, created if missing "
        "(default: in memory, gone when serve stops); a table there with data is kept, not seeded",
    )
    serve.add_argument(
        "--dynamodb-port",
        type=_dynamodb_port,
        metavar="P",
        help="port of the DynamoDB Local it starts, on 127.0.0.1 (default: a free one; printed at start)",
    )
    serve.add_argument(
        "--log-level",
        type=str.upper,
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        default=DEFAULT_LOG_LEVEL,
        help=f"the functions' Powertools log level (default: {DEFAULT_LOG_LEVEL})",
    )
    serve.add_argument(
        "--auth",
        choices=(AuthMode.NONE.value, AuthMode.SMART.value),
        default=AuthMode.NONE.value,
        help="none: every request is served (default); smart: SMART bearer tokens of the dev issuer, "
        "checked by the authorizer function",
    )
    serve.add_argument(
        "--dev-issuer-key",
        type=Path,
        metavar="PATH",
        help="with --auth smart: the dev issuer's RSA key (PEM), created with mode 0600 if missing",
    )
    serve.add_argument(
        "--cors-origin",
        action="append",
        type=_cors_origins,
        metavar="ORIGIN",
        help="let browser apps of ORIGIN call the API (CORS), as CorsAllowedOrigins does: "
        "* for any, repeatable or comma-separated (default: none)",
    )
    text = f"Print an access token of the dev issuer ({DEV_ISSUER}, audience {DEV_AUDIENCE}) on stdout."
    token = commands.add_parser("token", help=text, description=text)
    token.set_defaults(command=_token, endpoint_url=None, table=None)
    token.add_argument(
        "--dev-issuer-key", type=Path, required=True, metavar="PATH", help="the key file (created if missing)"
    )
    token.add_argument(
        "--scope",
        type=_text,
        required=True,
        metavar="SCOPES",
        help="space-separated, e.g. 'patient/Encounter.rs'",
    )
    token.add_argument("--patient", type=_fhir_id, metavar="ID", help="the SMART patient launch context")
    token.add_argument(
        "--expires-in",
        type=_seconds,
        default=DEFAULT_EXPIRES_IN,
        metavar="SECONDS",
        help=f"lifetime (default: {DEFAULT_EXPIRES_IN})",
    )
    token.add_argument(
        "--client-id",
        type=_text,
        default=DEFAULT_CLIENT_ID,
        metavar="ID",
        help=f"default: {DEFAULT_CLIENT_ID}",
    )
    token.add_argument(
        "--subject",
        type=_text,
        default=DEFAULT_SUBJECT,
        metavar="SUB",
        help=f"the sub claim (default: {DEFAULT_SUBJECT})",
    )
    token.add_argument(
        "--fhir-user",
        type=_text,
        metavar="REFERENCE",
        help="the SMART fhirUser claim, e.g. Patient/ID (narrows user/ scopes) or Practitioner/ID",
    )
    return parser
