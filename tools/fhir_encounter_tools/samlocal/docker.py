"""Docker for `sam local`: the daemon (started here as root when it is not running) and the Lambda
base image SAM wants, ``public.ecr.aws/lambda/python:3.13-<arch>``: AWS's when it can be pulled,
else a stand-in built once from Debian trixie (python3.13) and awslambdaric, and kept.

What is kept between runs lives in ``cache_dir()`` (outside the checkout): dockerd's data root
(so the imported image survives) and the stand-in's root file system as a tarball (so a new data
root imports it in seconds instead of running debootstrap again).
"""

from __future__ import annotations

import fcntl
import os
import platform
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

PYTHON = "3.13"
AWSLAMBDARIC = "awslambdaric==4.2.2"
DEBIAN_SUITE = "trixie"  # its python3 is 3.13
DEBIAN_MIRROR = "http://deb.debian.org/debian"
STAND_IN_LABEL = "org.fhir-encounter.lambda-stand-in"
DOCKER_START_SECONDS = 60.0
PULL_SECONDS = 300.0
SIOCGIFADDR = 0x8915
BOOTSTRAP = f"""#!/bin/sh
# The stand-in's Lambda runtime: the Runtime Interface Client runs the handler ($_HANDLER).
export PYTHONPATH=/var/task:/opt/python/lib/python{PYTHON}/site-packages:/opt/python:/var/runtime
exec python{PYTHON} -m awslambdaric "$_HANDLER"
"""

Say = Callable[[str], None]


class SamLocalError(RuntimeError):
    """`sam local` cannot be set up here; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class RuntimeImage:
    name: str
    stand_in: bool  # True: the Debian stand-in (SAM must not try to pull it)


def cache_dir() -> Path:
    """Where dockerd's data root and the stand-in's tarball are kept: $FHIR_ENCOUNTER_CACHE, else
    $XDG_CACHE_HOME/fhir-encounter/sam-local, else ~/.cache/fhir-encounter/sam-local."""
    explicit = os.environ.get("FHIR_ENCOUNTER_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "fhir-encounter" / "sam-local"


def lambda_architecture() -> str:
    """This machine's architecture as Lambda names it (x86_64 or arm64)."""
    machine = platform.machine().lower()
    if machine in ("x86_64", "amd64"):
        return "x86_64"
    if machine in ("aarch64", "arm64"):
        return "arm64"
    raise SamLocalError(f"Lambda runs x86_64 or arm64; this machine is {machine}")


def image_name(architecture: str) -> str:
    return f"public.ecr.aws/lambda/python:{PYTHON}-{architecture}"


# ---- the daemon ----------------------------------------------------------------------------------


def docker_running() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        result = _run(["docker", "info", "--format", "{{.ServerVersion}}"], timeout=15, check=False)
    except subprocess.TimeoutExpired:
        return False
    return result.returncode == 0


def unavailable_reason() -> str | None:
    """Why Docker cannot be had here (without changing anything), or None when it can."""
    if docker_running():
        return None
    if os.geteuid() != 0:
        what = "is not installed" if shutil.which("docker") is None else "is not running"
        return (
            f"Docker {what}, and only root may install or start it here: start Docker "
            "(sudo dockerd, or Docker Desktop), or run as root"
        )
    if shutil.which("dockerd") is None and shutil.which("apt-get") is None:
        return "Docker is not installed and there is no apt-get to install it: install Docker"
    return None


def ensure_docker(say: Say) -> None:
    """A reachable Docker daemon: the running one, else (root only) dockerd started here with its
    data root in the cache (Debian's service start is blocked by policy-rc.d). It keeps running."""
    if docker_running():
        say("Docker: the daemon is running")
        return
    reason = unavailable_reason()
    if reason is not None:
        raise SamLocalError(reason)
    if shutil.which("dockerd") is None or shutil.which("docker") is None:
        say("Docker: installing Debian's docker.io (apt-get)")
        _apt_install("docker.io")
    data_root = cache_dir() / "docker"
    data_root.mkdir(parents=True, exist_ok=True)
    log = cache_dir() / "dockerd.log"
    with log.open("ab") as output:
        process = subprocess.Popen(  # noqa: S603
            ["dockerd", "--data-root", str(data_root)],  # noqa: S607
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=output,
            start_new_session=True,
        )
    started = time.monotonic()
    while not docker_running():
        if process.poll() is not None or time.monotonic() > started + DOCKER_START_SECONDS:
            raise SamLocalError(f"dockerd did not start (exit status {process.poll()}); see {log}")
        time.sleep(0.5)
    say(
        f"Docker: started dockerd in {time.monotonic() - started:.0f} s (pid {process.pid}, data root "
        f"{data_root}, log {log}); it keeps running"
    )


def bridge_address() -> str | None:
    """The IPv4 address of Docker's default bridge (docker0) on this machine: a server listening
    there is reachable from the containers and not from beyond the machine. None without one
    (Docker Desktop)."""
    try:
        result = _run(
            [
                "docker",
                "network",
                "inspect",
                "bridge",
                "--format",
                '{{index .Options "com.docker.network.bridge.name"}}',
            ],
            timeout=15,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
        return None
    name = result.stdout.strip() or "docker0"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            packed = fcntl.ioctl(sock.fileno(), SIOCGIFADDR, struct.pack("256s", name.encode()[:15]))
        except OSError:
            return None
    return socket.inet_ntoa(packed[20:24])


# ---- the runtime image ---------------------------------------------------------------------------


def ensure_runtime_image(architecture: str, say: Say) -> RuntimeImage:
    """``public.ecr.aws/lambda/python:3.13-<architecture>`` in the local Docker: the one there
    already, else AWS's (pulled), else the stand-in (imported from the cached tarball, which is
    built first when missing)."""
    name = image_name(architecture)
    found = _image_label(name)
    if found is not None:
        stand_in = found != ""
        kind = "the Debian stand-in built by this tool" if stand_in else "AWS's Lambda base image"
        say(f"Runtime image: {name}, {kind}, already in Docker")
        return RuntimeImage(name, stand_in)
    say(f"Runtime image: pulling {name}")
    try:
        pulled = _run(["docker", "pull", name], timeout=PULL_SECONDS, check=False).returncode == 0
    except subprocess.TimeoutExpired:
        pulled = False
    if pulled:
        say(f"Runtime image: {name}, AWS's Lambda base image, pulled")
        return RuntimeImage(name, stand_in=False)
    tarball = cache_dir() / f"lambda-python{PYTHON}-{architecture}-rootfs.tar"
    if not tarball.is_file():
        say(
            f"Runtime image: {name} cannot be pulled (no registry); building a stand-in once "
            f"(Debian {DEBIAN_SUITE} minbase, python{PYTHON}, {AWSLAMBDARIC}): this takes minutes"
        )
        started = time.monotonic()
        build_stand_in_rootfs(architecture, tarball)
        say(
            f"Runtime image: stand-in root file system built in {time.monotonic() - started:.0f} s: {tarball}"
        )
    import_stand_in(tarball, name)
    say(f"Runtime image: {name} is the Debian stand-in (imported from {tarball}), not AWS's image")
    return RuntimeImage(name, stand_in=True)


def build_stand_in_rootfs(architecture: str, tarball: Path) -> None:
    """A Debian root file system that runs Python Lambda handlers under SAM's emulator: python3.13,
    CA certificates, awslambdaric in /var/runtime, /var/runtime/bootstrap, empty /var/task and /opt;
    written as ``tarball``."""
    if os.geteuid() != 0:
        raise SamLocalError(
            "building the stand-in image needs root (debootstrap); or make the image pullable"
        )
    if shutil.which("debootstrap") is None:
        _apt_install("debootstrap")
    debian_arch = {"x86_64": "amd64", "arm64": "arm64"}[architecture]
    wheel_platform = {"x86_64": "manylinux2014_x86_64", "arm64": "manylinux2014_aarch64"}[architecture]
    tarball.parent.mkdir(parents=True, exist_ok=True)
    log = tarball.with_suffix(".log")
    with tempfile.TemporaryDirectory(dir=tarball.parent, prefix="rootfs-") as work, log.open("w") as output:
        root = Path(work) / "rootfs"
        try:
            _build_rootfs(root, debian_arch, wheel_platform, output)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
            raise SamLocalError(f"building the stand-in failed ({error.cmd[0]}); see {log}") from None
        partial = tarball.with_suffix(".partial")
        _run(["tar", "--numeric-owner", "-C", str(root), "-cf", str(partial), "."], timeout=600)
        partial.replace(tarball)


def _build_rootfs(root: Path, debian_arch: str, wheel_platform: str, log: IO[str]) -> None:
    _run(
        [
            "debootstrap",
            "--variant=minbase",
            f"--arch={debian_arch}",
            "--include=python3,ca-certificates",
            DEBIAN_SUITE,
            str(root),
            os.environ.get("DEBIAN_MIRROR", DEBIAN_MIRROR),
        ],
        timeout=1800,
        log=log,
    )
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--target",
            str(root / "var" / "runtime"),
            "--only-binary=:all:",
            "--platform",
            wheel_platform,
            "--python-version",
            PYTHON,
            "--implementation",
            "cp",
            AWSLAMBDARIC,
        ],
        timeout=600,
        log=log,
    )
    bootstrap = root / "var" / "runtime" / "bootstrap"
    bootstrap.write_text(BOOTSTRAP)
    bootstrap.chmod(0o755)
    for folder in (root / "var" / "task", root / "opt"):
        folder.mkdir(parents=True, exist_ok=True)
    for cache in (root / "var" / "cache" / "apt" / "archives", root / "var" / "lib" / "apt" / "lists"):
        for path in cache.glob("*"):
            if path.is_file():
                path.unlink()


def import_stand_in(tarball: Path, name: str) -> None:
    changes = [
        "WORKDIR /var/task",
        'ENTRYPOINT ["/var/runtime/bootstrap"]',
        "ENV LANG=C.UTF-8 LAMBDA_TASK_ROOT=/var/task LAMBDA_RUNTIME_DIR=/var/runtime "
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        f"LABEL {STAND_IN_LABEL}={DEBIAN_SUITE}-python{PYTHON}-{AWSLAMBDARIC.replace('==', '-')}",
    ]
    command = ["docker", "import"]
    for change in changes:
        command += ["--change", change]
    _run([*command, str(tarball), name], timeout=600)


def _image_label(name: str) -> str | None:
    """The stand-in label of image ``name`` ("" when it has none); None when there is no such image."""
    template = "{{index .Config.Labels " + f'"{STAND_IN_LABEL}"' + "}}"
    result = _run(["docker", "image", "inspect", "--format", template, name], timeout=30, check=False)
    if result.returncode != 0:
        return None
    label = result.stdout.strip()
    return "" if label in ("", "<no value>") else label


def _apt_install(package: str) -> None:
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        _run(["apt-get", "update"], timeout=600, environment=environment)
        _run(["apt-get", "install", "-y", package], timeout=1200, environment=environment)
    except subprocess.CalledProcessError as error:
        raise SamLocalError(f"apt-get install {package} failed (exit status {error.returncode})") from None


def _run(
    command: list[str],
    *,
    timeout: float,
    check: bool = True,
    log: IO[str] | None = None,
    environment: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """A command with its output captured (or written to ``log``), bounded in time."""
    if log is not None:
        log.write(f"$ {' '.join(command)}\n")
        log.flush()
    return subprocess.run(  # noqa: S603
        command,
        check=check,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        stdout=log if log is not None else subprocess.PIPE,
        stderr=subprocess.STDOUT if log is not None else subprocess.PIPE,
        env=environment,
    )
