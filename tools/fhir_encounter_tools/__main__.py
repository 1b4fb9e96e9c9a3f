"""``python -m fhir_encounter_tools``: the ``fhir-encounter`` command."""

from fhir_encounter_tools.cli import main

raise SystemExit(main())
