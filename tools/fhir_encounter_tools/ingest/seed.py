"""Realistic synthetic Encounters for ``seed`` and ``serve``: Encounter n depends only on (seed, n),
so a larger --count keeps the records a smaller one wrote. SEED_PATIENT has every 25th; about 5%
of the others name their subject on another server (FOREIGN_BASE_URL), as real exports do."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from fhir_encounter_tools.ingest.validation import STATUSES

SEED = 7  # the default random seed: `serve` and `seed` write the same sample data
SEED_PATIENT = "patient-0001"
SEED_PATIENT_EVERY = 25
ENCOUNTERS_PER_PATIENT = 4
GROUPS = 8

ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
PARTICIPATION_TYPE = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
FOREIGN_BASE_URL = "https://ehr.example.net/fhir"  # another server (a subject there is not local)
PATIENTS_PER_BLOCK = 25  # the patients of each block of BLOCK Encounters: about four Encounters each
BLOCK = PATIENTS_PER_BLOCK * ENCOUNTERS_PER_PATIENT
APPOINTMENTS_PER_ENCOUNTER = 3  # at most: each Encounter numbers its own

WINDOW_START = datetime(2019, 1, 1, tzinfo=UTC)
WINDOW_END = datetime(2026, 12, 1, tzinfo=UTC)  # the last start: the longest stays end within 2026
SEED_PATIENT_FROM = datetime(2020, 1, 1, tzinfo=UTC)
ZONES = ("Z", "+00:00", "+05:30", "-08:00", "-05:00", "+01:00", "+09:00")

# class code: display, shortest and longest stay in minutes, SNOMED encounter types.
CLASSES: dict[str, tuple[str, int, int, tuple[tuple[str, str], ...]]] = {
    "AMB": (
        "ambulatory",
        10,
        120,
        (
            ("185349003", "Encounter for check up"),
            ("185347001", "Encounter for problem"),
            ("390906007", "Follow-up encounter"),
            ("11429006", "Consultation"),
        ),
    ),
    "EMER": (
        "emergency",
        45,
        24 * 60,
        (("50849002", "Emergency room admission"), ("183452005", "Emergency hospital admission")),
    ),
    "IMP": (
        "inpatient encounter",
        24 * 60,
        21 * 24 * 60,
        (("32485007", "Hospital admission"), ("305408004", "Admission to surgical department")),
    ),
    "VR": ("virtual", 5, 45, (("448337001", "Telemedicine consultation with patient"),)),
    "HH": ("home health", 30, 180, (("439708006", "Home visit"),)),
}
CLASS_WEIGHTS = (55, 12, 10, 15, 8)
STATUS_WEIGHTS = (8, 3, 3, 7, 2, 62, 8, 3, 4)  # in STATUSES order
OPEN_STATUSES = frozenset({"arrived", "triaged", "in-progress", "onleave"})
REASONS = (
    ("38341003", "Hypertensive disorder"),
    ("44054006", "Diabetes mellitus type 2"),
    ("195662009", "Acute viral pharyngitis"),
    ("10509002", "Acute bronchitis"),
    ("55822004", "Hyperlipidemia"),
    ("267036007", "Dyspnea"),
    ("22298006", "Myocardial infarction"),
    ("233604007", "Pneumonia"),
    ("25064002", "Headache"),
    ("161891005", "Backache"),
    ("35489007", "Depressive disorder"),
    ("72892002", "Normal pregnancy"),
)
LOCATIONS = (
    ("location-01", "General practice clinic"),
    ("location-02", "Emergency department"),
    ("location-03", "Ward 4 East"),
    ("location-04", "Surgical ward"),
    ("location-05", "Cardiology outpatient clinic"),
    ("location-06", "Patient's home"),
)
PRACTITIONERS = 24


def synthetic_encounters(count: int, seed: int) -> Iterator[dict[str, Any]]:
    """``count`` Encounters ``enc-00001`` ...; each depends only on ``seed`` and its number."""
    for number in range(1, count + 1):
        yield synthetic_encounter(number, seed)


def synthetic_encounter(number: int, seed: int) -> dict[str, Any]:
    """Encounter ``enc-<number>`` of ``seed``, whatever the count."""
    rng = random.Random(f"{seed}:{number}")  # noqa: S311 (synthetic data, repeatable by design)
    for_seed_patient = (number - 1) % SEED_PATIENT_EVERY == 0
    if 2 <= number <= len(STATUSES) + 1:  # every status, whatever the count
        status = STATUSES[number - 2]
    elif for_seed_patient:
        status = rng.choice(("finished", "finished", "finished", "in-progress"))
    else:
        status = rng.choices(STATUSES, weights=STATUS_WEIGHTS)[0]
    class_code = rng.choices(tuple(CLASSES), weights=CLASS_WEIGHTS)[0]
    display, shortest, longest, types = CLASSES[class_code]
    encounter_type = rng.choice(types)
    resource: dict[str, Any] = {
        "resourceType": "Encounter",
        "id": f"enc-{number:05d}",
        "identifier": [{"system": "https://fhir.example.org/visit-number", "value": f"V{number:07d}"}],
        "status": status,
        "class": {"system": ACT_CODE, "code": class_code, "display": display},
        "type": [
            {
                "coding": [{"system": SNOMED, "code": encounter_type[0], "display": encounter_type[1]}],
                "text": encounter_type[1],
            }
        ],
        "subject": {"reference": _subject(rng, number, for_seed_patient)},
        "participant": _participants(rng, class_code),
    }
    period, minutes = _period(rng, status, class_code, shortest, longest, for_seed_patient)
    if period:
        resource["period"] = period
    if minutes is not None and status == "finished":
        resource["length"] = {"value": minutes, "unit": "min", "system": UCUM, "code": "min"}
    if class_code != "EMER" and rng.random() < 0.5:
        used = rng.choices((1, 2, 3), weights=(80, 14, 6))[0]
        first = (number - 1) * APPOINTMENTS_PER_ENCOUNTER + 1
        resource["appointment"] = [
            {"reference": f"Appointment/appointment-{first + k:04d}"} for k in range(used)
        ]
    if status != "planned" and rng.random() < 0.7:
        code, text = rng.choice(REASONS)
        resource["reasonCode"] = [
            {"coding": [{"system": SNOMED, "code": code, "display": text}], "text": text}
        ]
    location_id, location_name = _location(rng, class_code)
    resource["location"] = [
        {
            "location": {"reference": f"Location/{location_id}", "display": location_name},
            "status": "active" if status in OPEN_STATUSES else "completed",
        }
    ]
    resource["serviceProvider"] = {"reference": f"Organization/organization-{rng.randint(1, 3):02d}"}
    return resource


def _subject(rng: random.Random, number: int, for_seed_patient: bool) -> str:
    if for_seed_patient:
        return f"Patient/{SEED_PATIENT}"
    if rng.random() < 0.08:
        return f"Group/group-{rng.randint(1, GROUPS):02d}"
    block = (number - 1) // BLOCK  # patient-0001 is SEED_PATIENT: the others start at 0002
    reference = f"Patient/patient-{2 + block * PATIENTS_PER_BLOCK + rng.randrange(PATIENTS_PER_BLOCK):04d}"
    return f"{FOREIGN_BASE_URL}/{reference}" if rng.random() < 0.05 else reference


def _participants(rng: random.Random, class_code: str) -> list[dict[str, Any]]:
    roles = [("PPRF", "primary performer")] + (
        [("ATND", "attender")] if class_code in ("IMP", "EMER") else []
    )
    return [
        {
            "type": [{"coding": [{"system": PARTICIPATION_TYPE, "code": code, "display": display}]}],
            "individual": {"reference": f"Practitioner/practitioner-{rng.randint(1, PRACTITIONERS):02d}"},
        }
        for code, display in roles
    ]


def _location(rng: random.Random, class_code: str) -> tuple[str, str]:
    by_class = {"EMER": 1, "IMP": rng.choice((2, 3)), "HH": 5}
    return LOCATIONS[by_class.get(class_code, rng.choice((0, 4)))]


def _period(
    rng: random.Random, status: str, class_code: str, shortest: int, longest: int, for_seed_patient: bool
) -> tuple[dict[str, str] | None, int | None]:
    """The period, and its length in minutes when it has an end and times."""
    if status == "planned" and rng.random() < 0.7:
        return None, None
    if status in ("cancelled", "entered-in-error", "unknown") and rng.random() < 0.25:
        return None, None
    earliest = SEED_PATIENT_FROM if for_seed_patient else WINDOW_START
    span_minutes = int((WINDOW_END - earliest).total_seconds() // 60)
    zone = rng.choice(ZONES)
    start = (earliest + timedelta(minutes=rng.randrange(span_minutes))).astimezone(_zone(zone))
    minutes = rng.randint(shortest, longest)
    end = start + timedelta(minutes=minutes)
    if rng.random() < (0.5 if class_code == "IMP" else 0.08):  # date-only, as admissions often are
        start_text, end_text, length = start.date().isoformat(), end.date().isoformat(), None
    else:
        start_text, end_text, length = _date_time(start, zone, rng), _date_time(end, zone, rng), minutes
    if status == "planned" or status in OPEN_STATUSES:
        return {"start": start_text}, None
    return {"start": start_text, "end": end_text}, length


def _zone(text: str) -> timezone:
    if text == "Z":
        return UTC
    sign = -1 if text[0] == "-" else 1
    return timezone(sign * timedelta(hours=int(text[1:3]), minutes=int(text[4:6])))


def _date_time(value: datetime, zone: str, rng: random.Random) -> str:
    text = value.isoformat(timespec="milliseconds" if rng.random() < 0.1 else "seconds")
    return text.replace("+00:00", "Z") if zone == "Z" else text
