"""``python -m fhir_encounter``: the ``fhir-encounter`` command."""

from fhir_encounter.local.cli import main

raise SystemExit(main())
