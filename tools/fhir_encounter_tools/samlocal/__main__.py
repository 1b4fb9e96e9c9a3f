"""``python -m fhir_encounter_tools.samlocal``: ``up`` is `make sam-local` (the API from real Lambda
containers on http://127.0.0.1:3000 until Ctrl-C); ``check`` says whether Docker can be had here
(exit 0), or why not (exit 3), for `make test-sam`."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from fhir_encounter_tools.samlocal.docker import SamLocalError, unavailable_reason
from fhir_encounter_tools.samlocal.stack import BUILD_DIR, LOCAL_TABLE, SEED_COUNT, sam_local

PROGRAM = "fhir-encounter-sam-local"
ENV_FILE = "env.json"  # git-ignored
EXIT_UNAVAILABLE = 3


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROGRAM, description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="serve the API with `sam local start-api` until Ctrl-C")
    up.add_argument("--sam", default=".venv-sam/bin/sam", help="the sam executable")
    up.add_argument("--port", type=int, default=3000, help="port on 127.0.0.1 (default: 3000)")
    up.add_argument("--seed-count", type=int, default=SEED_COUNT, help=f"default: {SEED_COUNT}")
    up.add_argument(
        "--reuse-build", action="store_true", help=f"skip `sam build` when {BUILD_DIR} holds a build"
    )
    commands.add_parser("check", help="whether Docker can be had here (exit 0), else why not (exit 3)")
    args = parser.parse_args(argv)
    if args.command == "check":
        reason = unavailable_reason()
        print(reason or "Docker is available")
        return 0 if reason is None else EXIT_UNAVAILABLE
    return _up(args.sam, args.port, args.seed_count, build=not args.reuse_build)


def _up(sam: str, port: int, seed_count: int, *, build: bool) -> int:
    started = time.monotonic()
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, _interrupt)
    try:
        with sam_local(str(Path(sam).absolute()), _say, seed_count, build=build) as local:
            env_file = local.write_env_file(local.project / ENV_FILE, LOCAL_TABLE)
            log = local.project / BUILD_DIR.parent / "start-api.log"
            _say(f"Wrote {ENV_FILE}; starting sam local start-api (warm containers), log in {log}")
            base_url = f"http://127.0.0.1:{port}"
            starting = time.monotonic()
            with local.start_api(env_file, port, log, fhir_base_url=base_url):
                _say(
                    f"start-api answered in {time.monotonic() - starting:.0f} s; "
                    f"ready {time.monotonic() - started:.0f} s after `make sam-local` began"
                )
                _say(f"Serving FHIR Encounter API from Lambda containers on {base_url} (Ctrl-C stops it)")
                _say(f"Try: curl '{base_url}/Encounter?patient=patient-0001'")
                while True:
                    time.sleep(3600)
    except KeyboardInterrupt:
        _say("Stopped: sam local, its containers and DynamoDB Local (dockerd keeps running)")
        return 0
    except SamLocalError as error:
        print(f"{PROGRAM}: error: {error}", file=sys.stderr, flush=True)
        return 1


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """The first Ctrl-C, SIGTERM or SIGHUP stops everything; later ones do not cut the cleanup short."""
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, signal.SIG_IGN)
    raise KeyboardInterrupt


def _say(line: str) -> None:
    print(line, flush=True)


if __name__ == "__main__":
    sys.exit(main())
