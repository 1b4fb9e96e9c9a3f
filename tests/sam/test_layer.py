"""The layer that `sam build` made imports inside the runtime image with nothing missing: every
module of fhir_encounter, every function's app.py (its composition root runs, as at a cold start),
and every pinned requirement installed at its pinned version."""

from __future__ import annotations

import json
import subprocess

from fhir_encounter_tools.samlocal.stack import BUILD_DIR, SamLocal, function_names
from fhir_encounter_tools.template import load_template
from tests.support import ROOT

CHECK = r"""
import importlib, importlib.metadata, importlib.util, json, os, pkgutil, sys
import fhir_encounter
modules = [info.name for info in pkgutil.walk_packages(fhir_encounter.__path__, "fhir_encounter.")]
for name in [*modules, "aws_xray_sdk.core"]:  # the tracer extra, imported lazily by Powertools
    importlib.import_module(name)
functions = []
for name in sorted(os.listdir("/functions")):
    spec = importlib.util.spec_from_file_location(f"{name}_app", f"/functions/{name}/app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    functions.append([name, callable(module.lambda_handler)])
pins = {}
for line in open("/opt/python/requirements.txt"):
    requirement = line.split("#")[0].strip()
    if requirement:
        name, _, version = requirement.partition("==")
        pins[requirement] = importlib.metadata.version(name.split("[")[0]) == version
report = {"python": sys.version.split()[0], "modules": modules, "functions": functions, "pins": pins}
print(json.dumps(report))
"""


def test_the_built_layer_imports_in_the_runtime_image(local: SamLocal) -> None:
    build = local.project / BUILD_DIR
    template = load_template(ROOT / "template.yaml")
    functions = function_names(template)
    mounts = [f"--volume={build / 'EncounterLayer'}:/opt:ro"]
    mounts += [f"--volume={build / name}:/functions/{name}:ro" for name in functions]
    environment = {
        "PYTHONPATH": "/opt/python",
        "AUTH_MODE": str(template["Parameters"]["AuthMode"]["Default"]),  # required, as deployed
        "ENCOUNTER_TABLE": "encounters",
        "CURSOR_SECRET": "a-cursor-secret-for-the-import-check",
        "DYNAMODB_ENDPOINT_URL": "http://127.0.0.1:9",  # a client is built at init, never called
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_DISABLED": "true",
    }
    done = subprocess.run(
        [
            "docker",
            "run",
            "--rm",
            "--network=none",
            "--entrypoint=python3.13",
            *mounts,
            *(f"--env={name}={value}" for name, value in environment.items()),
            local.image.name,
            "-c",
            CHECK,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["python"].startswith("3.13.")
    assert "fhir_encounter.routes" in report["modules"]
    assert "fhir_encounter.store.repository" in report["modules"]
    assert report["functions"] == [[name, True] for name in sorted(functions)]
    pinned = (ROOT / "layers" / "encounter" / "python" / "requirements.txt").read_text().split()
    assert report["pins"] == dict.fromkeys(pinned, True)
