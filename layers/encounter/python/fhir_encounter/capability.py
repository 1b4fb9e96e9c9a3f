"""The CapabilityStatement (GET /metadata), built from the search-parameter registry.

FHIR clients (HAPI's generic client, SMART's fhirclient) read it before their first request.
"""

from __future__ import annotations

import json
from functools import lru_cache

from fhir_encounter import __version__
from fhir_encounter.errors import FHIR_JSON
from fhir_encounter.search.parameters import RESULT_PARAMETERS, SEARCH_PARAMETERS

SOFTWARE_NAME = "fhir-encounter"
RELEASE_DATE = "2026-11-26"
# CapabilityStatement.rest.resource.documentation (markdown). searchInclude and searchRevInclude
# stay absent: no _include or _revinclude value is supported (search/query.py NOT_SUPPORTED).
ENCOUNTER_DOCUMENTATION = (
    "Search by `GET [base]/Encounter?...` or by `POST [base]/Encounter/_search` with the parameters in an "
    "`application/x-www-form-urlencoded` (UTF-8) body, URL parameters applying too: both give the same "
    "Bundle, whose links are GET URLs. `_include` and `_revinclude` (and their `:iterate` forms) are not "
    "supported: a search returns the matching Encounters only; they are ignored, or a 400 under "
    "`Prefer: handling=strict`."
)


@lru_cache(maxsize=8)
def capability_statement_json(base_url: str, security: str | None = None) -> str:
    """``security``: CapabilityStatement.rest.security as JSON text, when the server has one."""
    statement = {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": RELEASE_DATE,
        "publisher": "fhir-encounter",
        "kind": "instance",
        "software": {"name": SOFTWARE_NAME, "version": __version__},
        "implementation": {
            "description": "Serverless FHIR R4 Encounter API (read and search)",
            "url": base_url,
        },
        "fhirVersion": "4.0.1",
        "format": [FHIR_JSON, "json"],
        "rest": [
            {
                "mode": "server",
                **({"security": json.loads(security)} if security else {}),
                "resource": [
                    {
                        "type": "Encounter",
                        "profile": "http://hl7.org/fhir/StructureDefinition/Encounter",
                        "documentation": ENCOUNTER_DOCUMENTATION,
                        "interaction": [{"code": "read"}, {"code": "search-type"}],
                        "versioning": "versioned",
                        "readHistory": False,
                        "conditionalRead": "not-match",
                        "searchParam": [
                            {
                                "name": name,
                                "definition": spec.definition,
                                "type": spec.type.value,
                                "documentation": spec.capability_documentation,
                            }
                            for name, spec in SEARCH_PARAMETERS.items()
                        ],
                    }
                ],
                "searchParam": [
                    {"name": name, "type": spec.type.value, "documentation": spec.documentation}
                    for name, spec in RESULT_PARAMETERS.items()
                    if name != "_cursor"
                ],
            }
        ],
    }
    return json.dumps(statement, separators=(",", ":"))
