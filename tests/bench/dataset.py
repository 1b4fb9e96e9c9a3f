"""The bench's data set: ``size`` Encounters shaped as issue 9 describes, the same for a seed.

- Subjects: patients drawn from a Zipf law (exponent 0.8, one patient per 300 Encounters), so a
  few are busy: at 20,000 the median patient has about 150 Encounters and the busiest about 2,500;
  3% of subjects are Groups.
- History: starts spread evenly over seven years (2019 to 2025).
- Periods: 8% none; 2% an end only; 8% a start only (open-ended); 0.2% long stays (65 to 400
  days); of the other closed periods, 70% last 5 to 90 minutes and 30% from 2 hours to 40 days
  (log-uniform, so every duration class up to 64 days is filled). A tenth of the longer ones are
  dates without times, as admissions often are; times carry a few zones besides UTC.
- Appointments: a quarter of the Encounters name one (a few two); one in a hundred names one of
  ten shared appointments, which the appointment search shape uses.

Bodies look like real exports (identifier, class, type, participants, location, reason), so that
item sizes and read units are realistic. All of the above comes from one stream,
``Random(f"bench:{seed}:{size}")``, unchanged since the set was first measured. Each Encounter then
gets the details the other Encounter search parameters read from a stream of its own
(``Random(f"bench:{seed}:{size}:{n}:extra")``), by the seed's ``add_details``, with its shares:
a second identifier 60%; a local type coding 25% and a second type 20%; more participants by
class (Zipf-drawn Practitioners, some PractitionerRoles, an escort RelatedPerson 2%, a logical and
a conditional reference 1% each; an attender for every IMP and EMER); each location's status and
its period within the Encounter's, two locations for 30% of the closed IMP and 15% of the closed
EMER with times; a length (min, h or d) for every closed period; reasonReference 25%, diagnosis 40%,
episodeOfCare 15%, basedOn 20%, account 30%, partOf 3% (the subject's previous Encounter),
dischargeDisposition for 90% of the finished IMP and EMER, specialArrangement 3%. Class, type
and period are independent draws here (unlike the seed's), so a length follows the period and not
the class. About 2 KB an Encounter.
"""

from __future__ import annotations

import itertools
import math
import random
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from functools import partial
from typing import Any

from fhir_encounter_tools.ingest.seed import add_details

SEED = 9
HISTORY_START = datetime(2019, 1, 1, tzinfo=UTC)
HISTORY_END = datetime(2026, 1, 1, tzinfo=UTC)
ENCOUNTERS_PER_PATIENT = 300  # patients = size / this
ZIPF_EXPONENT = 0.8
GROUP_SHARE = 0.03
SHARED_APPOINTMENTS = 10

# Period kinds and their shares (the rest are closed periods of the two usual lengths).
NO_PERIOD, END_ONLY, OPEN_ENDED, LONG_STAY = 0.08, 0.02, 0.08, 0.002
SHORT_SHARE = 0.70  # of the other closed periods: 5 to 90 minutes; the others 2 hours to 40 days
LONG_STAY_DAYS = (65, 400)
DATE_ONLY_SHARE = 0.10  # of periods from 2 hours on: dates without times

ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
SNOMED = "http://snomed.info/sct"
ZONES = (("Z", 0), ("Z", 0), ("Z", 0), ("+01:00", 60), ("-05:00", -300), ("+05:30", 330), ("-08:00", -480))
CLASSES = (("AMB", "ambulatory"), ("EMER", "emergency"), ("IMP", "inpatient encounter"), ("VR", "virtual"))
TYPES = (
    ("185349003", "Encounter for check up"),
    ("185347001", "Encounter for problem"),
    ("32485007", "Hospital admission"),
    ("448337001", "Telemedicine consultation with patient"),
)
REASONS = (
    ("38341003", "Hypertensive disorder"),
    ("44054006", "Diabetes mellitus type 2"),
    ("195662009", "Acute viral pharyngitis"),
    ("233604007", "Pneumonia"),
)
OPEN_STATUSES = ("in-progress", "in-progress", "arrived", "triaged", "onleave")


@dataclass(frozen=True)
class Dataset:
    encounters: list[dict[str, Any]]
    patient_counts: dict[str, int]  # Patient/<id> -> Encounters
    typical_patient: str  # the patient with the median count
    busiest_patient: str
    shared_appointment: str
    sample_id: str  # an Encounter in the middle of the set

    @property
    def size(self) -> int:
        return len(self.encounters)


def generate(size: int, seed: int = SEED) -> Dataset:
    """``size`` Encounters ``enc-0000001`` ...; the same ``size`` and ``seed`` give the same set."""
    rng = random.Random(f"bench:{seed}:{size}")
    patients = max(2, round(size / ENCOUNTERS_PER_PATIENT))
    weights = list(itertools.accumulate((rank + 1) ** -ZIPF_EXPONENT for rank in range(patients)))
    drawn = [_encounter(rng, number, weights) for number in range(1, size + 1)]
    latest: dict[str, str] = {}  # subject -> the id of its latest Encounter so far
    for number, (resource, stay_minutes) in enumerate(drawn, start=1):
        subject = resource["subject"]["reference"]
        add_details(
            resource,
            random.Random(f"bench:{seed}:{size}:{number}:extra"),
            stay_minutes=stay_minutes,
            earlier=partial(latest.get, subject),
        )
        latest[subject] = resource["id"]
    encounters = [resource for resource, _ in drawn]
    counts = Counter(ref for e in encounters if (ref := e["subject"]["reference"]).startswith("Patient/"))
    by_count = sorted(counts, key=lambda ref: (counts[ref], ref))
    return Dataset(
        encounters=encounters,
        patient_counts=dict(counts),
        typical_patient=by_count[len(by_count) // 2],
        busiest_patient=by_count[-1],
        shared_appointment="Appointment/appt-shared-01",
        sample_id=str(encounters[size // 2]["id"]),
    )


def _encounter(
    rng: random.Random, number: int, patient_weights: list[float]
) -> tuple[dict[str, Any], float | None]:
    """The Encounter as the main stream draws it, and its stay's minutes when its period is closed."""
    if rng.random() < GROUP_SHARE:
        subject = f"Group/group-{rng.randint(1, 5)}"
    else:
        rank = rng.choices(range(len(patient_weights)), cum_weights=patient_weights)[0]
        subject = f"Patient/patient-{rank + 1:05d}"
    class_code, class_display = rng.choice(CLASSES)
    type_code, type_text = rng.choice(TYPES)
    status, period, stay_minutes = _period(rng)
    resource: dict[str, Any] = {
        "resourceType": "Encounter",
        "id": f"enc-{number:07d}",
        "identifier": [{"system": "https://fhir.example.org/visit-number", "value": f"V{number:08d}"}],
        "status": status,
        "class": {"system": ACT_CODE, "code": class_code, "display": class_display},
        "type": [
            {"coding": [{"system": SNOMED, "code": type_code, "display": type_text}], "text": type_text}
        ],
        "subject": {"reference": subject},
        "participant": [
            {
                "type": [
                    {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                "code": "PPRF",
                                "display": "primary performer",
                            }
                        ]
                    }
                ],
                "individual": {"reference": f"Practitioner/practitioner-{rng.randint(1, 40):02d}"},
            }
        ],
    }
    if period:
        resource["period"] = period
    appointments = _appointments(rng, number)
    if appointments:
        resource["appointment"] = [{"reference": ref} for ref in appointments]
    if rng.random() < 0.7:
        code, text = rng.choice(REASONS)
        resource["reasonCode"] = [
            {"coding": [{"system": SNOMED, "code": code, "display": text}], "text": text}
        ]
    resource["location"] = [
        {"location": {"reference": f"Location/location-{rng.randint(1, 12):02d}", "display": "Clinic"}}
    ]
    resource["serviceProvider"] = {"reference": f"Organization/organization-{rng.randint(1, 3):02d}"}
    return resource, stay_minutes


def _period(rng: random.Random) -> tuple[str, dict[str, str] | None, float | None]:
    """(status, period, the stay's minutes when closed) by the shares above."""
    draw = rng.random()
    start = HISTORY_START + timedelta(
        seconds=rng.randrange(int((HISTORY_END - HISTORY_START).total_seconds()))
    )
    if draw < NO_PERIOD:
        return rng.choice(("planned", "planned", "planned", "cancelled")), None, None
    draw -= NO_PERIOD
    if draw < END_ONLY:
        return "finished", {"end": _instant(rng, start)}, None
    draw -= END_ONLY
    if draw < OPEN_ENDED:
        return rng.choice(OPEN_STATUSES), {"start": _instant(rng, start)}, None
    draw -= OPEN_ENDED
    if draw < LONG_STAY:
        length = timedelta(days=rng.uniform(*LONG_STAY_DAYS))
    elif rng.random() < SHORT_SHARE:
        length = timedelta(minutes=rng.uniform(5, 90))
    else:
        length = timedelta(hours=math.exp(rng.uniform(math.log(2), math.log(40 * 24))))
    minutes = length.total_seconds() / 60
    if length >= timedelta(hours=2) and rng.random() < DATE_ONLY_SHARE:
        dates = {"start": start.date().isoformat(), "end": (start + length).date().isoformat()}
        return "finished", dates, minutes
    zone = rng.choice(ZONES)
    times = {"start": _instant(rng, start, zone), "end": _instant(rng, start + length, zone)}
    return "finished", times, minutes


def _instant(rng: random.Random, value: datetime, zone: tuple[str, int] | None = None) -> str:
    name, minutes = zone or rng.choice(ZONES)
    text = value.astimezone(timezone(timedelta(minutes=minutes))).isoformat(timespec="seconds")
    return text.replace("+00:00", "Z") if name == "Z" else text


def _appointments(rng: random.Random, number: int) -> list[str]:
    if rng.random() < 0.01:
        return [f"Appointment/appt-shared-{rng.randint(1, SHARED_APPOINTMENTS):02d}"]
    if rng.random() >= 0.25:
        return []
    own = [f"Appointment/appt-{number:07d}"]
    return [*own, f"Appointment/appt-{number:07d}-b"] if rng.random() < 0.1 else own
