"""Realistic synthetic Encounters for ``seed`` and ``serve``: Encounter n depends only on (seed, n),
so a larger --count keeps the records a smaller one wrote. SEED_PATIENT has every 25th; about 5%
of the others name their subject on another server (FOREIGN_BASE_URL), as real exports do.

Two random streams make an Encounter. The first, ``Random(f"{seed}:{n}")``, draws what the seed
has always written, unchanged: id, one visit-number identifier, status, class (ActCode AMB 55%,
VR 15%, EMER 12%, IMP 10%, HH 8%), one SNOMED type of its class, subject, a primary performer (and
an attender for IMP and EMER, Practitioner 01 to 24 alike), period (stays by class: AMB 10 min to
2 h, VR to 45 min, HH to 3 h, EMER 45 min to a day, IMP 1 to 21 days), its length in minutes when
finished with times, appointments, a reason code (70% of those not planned), one location and
the serviceProvider (Organization 01 to 03).

The second, ``Random(f"{seed}:{n}:extra")``, adds the details (``add_details``) that the other
Encounter search parameters read, only after what is there (a new key after the old ones, a new
item after the old items, a new key after an item's old keys), so the first stream's output stays
the same, byte for byte:

- identifier: 60% also have the EHR's id (``https://ehr.example.org/encounter-id``, unique).
- type: 25% add a local coding to the SNOMED one; 20% a second SNOMED type of their class
  (308335008, 185345009, 270427003, 410620009).
- participant: more of them by class (IMP: admitter 90%, discharger 70% when finished, consultant
  35%, secondary performer 30%; EMER: secondary performer 40%, admitter 25%, consultant 20%; HH:
  secondary performer 25%; AMB 15% and consultant 6%; VR 5%), Practitioners 01 to 60 drawn from
  a Zipf law (exponent 1: the first has a fifth), 10% of them as a PractitionerRole; an escort
  RelatedPerson for 2% of patients' Encounters; 1% a referrer by logical reference (type and NPI
  identifier, no reference) and 1% a consultant by conditional reference (``Practitioner?identifier=``).
- location: a status where there is none; each one's period (the Encounter's, when it has one);
  30% of the closed IMP stays with times begin in the emergency department, 15% of the closed EMER
  visits end on a ward (two locations, one after the other, within the Encounter's period).
- length: also for the finished stays given as dates (min under 2 h, h under 2 days, d beyond).
- reasonReference 25% (a Condition of the subject, 20% an Observation; 15% name two),
  diagnosis 40% (one to three of the subject's Conditions, with use and rank),
  episodeOfCare 15%, basedOn 20% (a ServiceRequest of its own), account 30% (the subject's),
  partOf 3% (the nearest earlier Encounter of the same subject, when there is one),
  hospitalization: dischargeDisposition for 90% of the finished IMP and EMER, specialArrangement 3%.

Conditions, episodes, accounts and escorts are the subject's (``<subject id>-condition-2``), so
several Encounters of one patient share them. About 2 KB an Encounter.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterator
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
PRACTITIONERS = 24  # of the first stream, alike; the details draw from more, by a Zipf law

# ---- the details (the second stream) ----
EHR_ENCOUNTER_ID = "https://ehr.example.org/encounter-id"
LOCAL_TYPE = "https://ehr.example.org/CodeSystem/encounter-type"
NPI = "http://hl7.org/fhir/sid/us-npi"
DIAGNOSIS_ROLE = "http://terminology.hl7.org/CodeSystem/diagnosis-role"
DISCHARGE_DISPOSITION = "http://terminology.hl7.org/CodeSystem/discharge-disposition"
SPECIAL_ARRANGEMENTS = "http://terminology.hl7.org/CodeSystem/encounter-special-arrangements"
EHR_ID_SHARE = 0.60
LOCAL_CODING_SHARE, SECOND_TYPE_SHARE = 0.25, 0.20
REASON_REFERENCE_SHARE, DIAGNOSIS_SHARE = 0.25, 0.40
EPISODE_SHARE, BASED_ON_SHARE, ACCOUNT_SHARE, PART_OF_SHARE = 0.15, 0.20, 0.30, 0.03
DISCHARGE_SHARE, SPECIAL_ARRANGEMENT_SHARE = 0.90, 0.03  # discharge: of the finished IMP and EMER
ESCORT_SHARE, LOGICAL_SHARE, CONDITIONAL_SHARE = 0.02, 0.01, 0.01
ROLE_SHARE = 0.10  # of the added participants: a PractitionerRole rather than a Practitioner
PRACTITIONER_POOL, PRACTITIONER_ZIPF = 60, 1.0
CONDITIONS_PER_SUBJECT, EPISODES_PER_SUBJECT = 4, 2
TRANSFER_SHARE = {"IMP": 0.30, "EMER": 0.15}  # of the closed stays with times: two locations
EMERGENCY_DEPARTMENT, WARD = LOCATIONS[1], LOCATIONS[2]

LOCAL_TYPE_CODES = {
    "185349003": "CHECKUP",
    "185347001": "PROBLEM",
    "390906007": "FOLLOWUP",
    "11429006": "CONSULT",
    "50849002": "ER",
    "183452005": "ER-ADMIT",
    "32485007": "ADMIT",
    "305408004": "SURG-ADMIT",
    "448337001": "TELE",
    "439708006": "HOME",
}
PROCEDURE = ("308335008", "Patient encounter procedure")
SYMPTOM = ("185345009", "Encounter for symptom")
PATIENT_INITIATED = ("270427003", "Patient-initiated encounter")
WELL_CHILD = ("410620009", "Well child visit")
SECOND_TYPES = {
    "AMB": (PROCEDURE, SYMPTOM, PATIENT_INITIATED, WELL_CHILD),
    "EMER": (PROCEDURE, SYMPTOM),
    "IMP": (PROCEDURE,),
    "VR": (SYMPTOM, PATIENT_INITIATED),
    "HH": (PROCEDURE, SYMPTOM),
}
ROLES = {
    "ATND": "attender",
    "SPRF": "secondary performer",
    "CON": "consultant",
    "ADM": "admitter",
    "DIS": "discharger",
    "ESC": "escort",
    "REF": "referrer",
}
# class: the added participants' roles and their shares (DIS only when finished).
MORE_ROLES: dict[str, tuple[tuple[str, float], ...]] = {
    "AMB": (("SPRF", 0.15), ("CON", 0.06)),
    "VR": (("SPRF", 0.05),),
    "HH": (("SPRF", 0.25),),
    "EMER": (("SPRF", 0.40), ("CON", 0.20), ("ADM", 0.25)),
    "IMP": (("ADM", 0.90), ("DIS", 0.70), ("CON", 0.35), ("SPRF", 0.30)),
}
DIAGNOSIS_USES = {
    "AD": "Admission diagnosis",
    "DD": "Discharge diagnosis",
    "CC": "Chief complaint",
    "CM": "Comorbidity diagnosis",
    "billing": "Billing",
}
DIAGNOSIS_ORDER = {"IMP": ("AD", "DD", "CM"), "EMER": ("CC", "DD", "CM")}  # others: CC, billing, CM
# code: display, weight for IMP, weight for EMER
DISCHARGES: dict[str, tuple[str, int, int]] = {
    "home": ("Home", 60, 80),
    "alt-home": ("Alternative home", 4, 3),
    "other-hcf": ("Other healthcare facility", 6, 4),
    "hosp": ("Hospice", 3, 1),
    "long": ("Long-term care", 4, 1),
    "snf": ("Skilled nursing facility", 8, 1),
    "rehab": ("Rehabilitation", 5, 1),
    "psy": ("Psychiatric hospital", 2, 1),
    "aadvice": ("Left against advice", 3, 5),
    "exp": ("Expired", 3, 1),
    "oth": ("Other", 2, 2),
}
ARRANGEMENTS: dict[str, tuple[str, int]] = {
    "wheel": ("Wheelchair", 40),
    "int": ("Interpreter", 30),
    "att": ("Attendant", 15),
    "add-bed": ("Additional bedding", 10),
    "dog": ("Guide dog", 5),
}
_PRACTITIONER_WEIGHTS = list(
    itertools.accumulate((rank + 1) ** -PRACTITIONER_ZIPF for rank in range(PRACTITIONER_POOL))
)


def synthetic_encounters(count: int, seed: int) -> Iterator[dict[str, Any]]:
    """``count`` Encounters ``enc-00001`` ...; each depends only on ``seed`` and its number."""
    for number in range(1, count + 1):
        yield synthetic_encounter(number, seed)


def synthetic_encounter(number: int, seed: int) -> dict[str, Any]:
    """Encounter ``enc-<number>`` of ``seed``, whatever the count."""
    resource, stay_minutes = _outline(number, seed)
    subject = resource["subject"]["reference"]
    add_details(
        resource,
        random.Random(f"{seed}:{number}:extra"),  # noqa: S311 (synthetic data, repeatable by design)
        stay_minutes=stay_minutes,
        earlier=lambda: _earlier_of(subject, number, seed),
    )
    return resource


def _outline(number: int, seed: int) -> tuple[dict[str, Any], float | None]:
    """What the first stream draws (the module's docstring), and the stay's minutes when closed."""
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
    if period and minutes is not None and status == "finished" and "T" in period["start"]:
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
    return resource, minutes


def _earlier_of(subject: str, number: int, seed: int) -> str | None:
    """The id of the nearest earlier Encounter of ``subject`` in ``number``'s block (a patient's
    Encounters are all in one block), or None."""
    first = (number - 1) // BLOCK * BLOCK + 1
    for earlier in range(number - 1, first - 1, -1):
        resource, _ = _outline(earlier, seed)
        if resource["subject"]["reference"] == subject:
            return str(resource["id"])
    return None


def add_details(
    resource: dict[str, Any],
    rng: random.Random,
    *,
    stay_minutes: float | None = None,
    earlier: Callable[[], str | None] = lambda: None,
) -> None:
    """Adds to ``resource`` (an Encounter with id ``<prefix>-<number>``, status, class, type, subject,
    participant and location, and perhaps period and length) the details the module's docstring
    lists, drawn from ``rng``, after what it has. ``stay_minutes`` is the stay's true length when its
    period gives dates only; ``earlier`` the id of an earlier Encounter of the same subject, if any."""
    number = int(str(resource["id"]).rpartition("-")[2])
    class_code, status = resource["class"]["code"], resource["status"]
    subject = resource["subject"]["reference"]
    owner = subject.rpartition("/")[2]  # the subject's id: its Conditions, episodes and account
    if rng.random() < EHR_ID_SHARE:
        value = f"{number * 48271 % 2_147_483_647:010d}"  # a bijection below 2**31 - 1: unique
        resource["identifier"].append({"use": "official", "system": EHR_ENCOUNTER_ID, "value": value})
    _add_types(rng, resource["type"], class_code)
    resource["participant"].extend(_more_participants(rng, resource, "Patient/" in subject, owner))
    _add_location_periods(rng, resource, class_code)
    length = _stay_length(resource.get("period"), stay_minutes)
    if "length" not in resource and status == "finished" and length is not None:
        resource["length"] = _duration(length)
    if rng.random() < REASON_REFERENCE_SHARE:
        resource["reasonReference"] = _reason_references(rng, owner, number)
    if rng.random() < DIAGNOSIS_SHARE:
        resource["diagnosis"] = _diagnoses(rng, owner, class_code)
    if rng.random() < EPISODE_SHARE:
        episode = rng.randint(1, EPISODES_PER_SUBJECT)
        resource["episodeOfCare"] = [{"reference": f"EpisodeOfCare/{owner}-episode-{episode}"}]
    if rng.random() < BASED_ON_SHARE:
        resource["basedOn"] = [{"reference": f"ServiceRequest/servicerequest-{number:07d}"}]
    if rng.random() < ACCOUNT_SHARE:
        resource["account"] = [{"reference": f"Account/{owner}-account"}]
    hospitalization = _hospitalization(rng, class_code, status)
    if hospitalization:
        resource["hospitalization"] = hospitalization
    if rng.random() < PART_OF_SHARE and (parent := earlier()) is not None:
        resource["partOf"] = {"reference": f"Encounter/{parent}"}


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
    """The period, and its length in minutes when it has an end (given as dates or times)."""
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
        start_text, end_text = start.date().isoformat(), end.date().isoformat()
    else:
        start_text, end_text = _date_time(start, zone, rng), _date_time(end, zone, rng)
    if status == "planned" or status in OPEN_STATUSES:
        return {"start": start_text}, None
    return {"start": start_text, "end": end_text}, minutes


def _zone(text: str) -> timezone:
    if text == "Z":
        return UTC
    sign = -1 if text[0] == "-" else 1
    return timezone(sign * timedelta(hours=int(text[1:3]), minutes=int(text[4:6])))


def _date_time(value: datetime, zone: str, rng: random.Random) -> str:
    text = value.isoformat(timespec="milliseconds" if rng.random() < 0.1 else "seconds")
    return text.replace("+00:00", "Z") if zone == "Z" else text


# ---- the details ---------------------------------------------------------------------------------


def _coding(system: str, code: str, display: str) -> dict[str, str]:
    return {"system": system, "code": code, "display": display}


def _add_types(rng: random.Random, types: list[dict[str, Any]], class_code: str) -> None:
    first = types[0]["coding"][0]["code"]
    if rng.random() < LOCAL_CODING_SHARE and first in LOCAL_TYPE_CODES:
        code = LOCAL_TYPE_CODES[first]
        types[0]["coding"].append(_coding(LOCAL_TYPE, code, types[0]["text"]))
    if rng.random() < SECOND_TYPE_SHARE:
        code, display = rng.choice(SECOND_TYPES[class_code])
        if code != first:
            types.append({"coding": [_coding(SNOMED, code, display)], "text": display})


def _participant(role: str, individual: dict[str, Any]) -> dict[str, Any]:
    return {"type": [{"coding": [_coding(PARTICIPATION_TYPE, role, ROLES[role])]}], "individual": individual}


def _more_participants(
    rng: random.Random, resource: dict[str, Any], of_patient: bool, owner: str
) -> list[dict[str, Any]]:
    class_code, status = resource["class"]["code"], resource["status"]
    roles = [
        role
        for role, share in MORE_ROLES[class_code]
        if rng.random() < share and (role != "DIS" or status == "finished")
    ]
    present = {c["code"] for p in resource["participant"] for t in p["type"] for c in t["coding"]}
    if class_code in ("IMP", "EMER") and "ATND" not in present:
        roles.insert(0, "ATND")
    added = []
    for role in roles:
        rank = rng.choices(range(1, PRACTITIONER_POOL + 1), cum_weights=_PRACTITIONER_WEIGHTS)[0]
        kind = "PractitionerRole" if rng.random() < ROLE_SHARE else "Practitioner"
        added.append(_participant(role, {"reference": f"{kind}/{kind.lower()}-{rank:02d}"}))
    if of_patient and rng.random() < ESCORT_SHARE:
        added.append(_participant("ESC", {"reference": f"RelatedPerson/{owner}-related-1"}))
    draw, npi = rng.random(), f"1{rng.randrange(10**9):09d}"  # a practitioner of another organisation
    if draw < LOGICAL_SHARE:
        added.append(
            _participant("REF", {"type": "Practitioner", "identifier": {"system": NPI, "value": npi}})
        )
    elif draw < LOGICAL_SHARE + CONDITIONAL_SHARE:
        added.append(_participant("CON", {"reference": f"Practitioner?identifier={NPI}|{npi}"}))
    return added


def _add_location_periods(rng: random.Random, resource: dict[str, Any], class_code: str) -> None:
    """Each location's status and its period within the Encounter's; some closed stays move once
    (TRANSFER_SHARE)."""
    first = resource["location"][0]
    if "status" not in first:
        status = resource["status"]
        first["status"] = {"planned": "planned"}.get(
            status, "active" if status in OPEN_STATUSES else "completed"
        )
    period = resource.get("period")
    if not period:
        return
    start, end = period.get("start"), period.get("end")
    if not (start and end and "T" in start and rng.random() < TRANSFER_SHARE.get(class_code, 0.0)):
        first["period"] = dict(period)
        return
    begin = datetime.fromisoformat(start)
    moved = begin + (datetime.fromisoformat(end) - begin) * rng.uniform(0.1, 0.5)
    text = moved.isoformat(timespec="seconds")  # no later than the true instant: still after start
    at = text.replace("+00:00", "Z") if start.endswith("Z") else text
    if class_code == "IMP":  # admitted through the emergency department
        first["period"] = {"start": at, "end": end}
        place, place_period = EMERGENCY_DEPARTMENT, {"start": start, "end": at}
    else:  # from the emergency department to a ward
        first["period"] = {"start": start, "end": at}
        place, place_period = WARD, {"start": at, "end": end}
    resource["location"].append(
        {
            "location": {"reference": f"Location/{place[0]}", "display": place[1]},
            "status": "completed",  # a closed stay
            "period": place_period,
        }
    )


def _stay_length(period: dict[str, str] | None, stay_minutes: float | None) -> float | None:
    """The minutes of a closed period: from its times, or ``stay_minutes`` when it gives dates."""
    if not period or "start" not in period or "end" not in period:
        return None
    if "T" not in period["start"]:
        return stay_minutes
    seconds = (
        datetime.fromisoformat(period["end"]) - datetime.fromisoformat(period["start"])
    ).total_seconds()
    return seconds / 60


def _duration(minutes: float) -> dict[str, Any]:
    """A UCUM Duration: whole minutes under 2 hours, tenths of an hour under 2 days, else of a day."""
    if minutes < 120:
        value: float = round(minutes)
        unit = "min"
    elif minutes < 2 * 24 * 60:
        value, unit = round(minutes / 60, 1), "h"
    else:
        value, unit = round(minutes / (24 * 60), 1), "d"
    return {"value": value, "unit": unit, "system": UCUM, "code": unit}


def _reason_references(rng: random.Random, owner: str, number: int) -> list[dict[str, str]]:
    references = []
    for k in range(1, 3 if rng.random() < 0.15 else 2):
        if rng.random() < 0.2:
            references.append({"reference": f"Observation/observation-{number:07d}-{k}"})
        else:
            condition = rng.randint(1, CONDITIONS_PER_SUBJECT)
            references.append({"reference": f"Condition/{owner}-condition-{condition}"})
    return list({r["reference"]: r for r in references}.values())  # a Condition once


def _diagnoses(rng: random.Random, owner: str, class_code: str) -> list[dict[str, Any]]:
    count = rng.choices((1, 2, 3), weights=(70, 22, 8))[0]
    conditions = rng.sample(range(1, CONDITIONS_PER_SUBJECT + 1), count)
    uses = DIAGNOSIS_ORDER.get(class_code, ("CC", "billing", "CM"))
    return [
        {
            "condition": {"reference": f"Condition/{owner}-condition-{condition}"},
            "use": {"coding": [_coding(DIAGNOSIS_ROLE, use, DIAGNOSIS_USES[use])]},
            "rank": rank,
        }
        for rank, (condition, use) in enumerate(zip(conditions, uses, strict=False), start=1)
    ]


def _hospitalization(rng: random.Random, class_code: str, status: str) -> dict[str, Any]:
    hospitalization: dict[str, Any] = {}
    if rng.random() < SPECIAL_ARRANGEMENT_SHARE:
        weights = [weight for _, weight in ARRANGEMENTS.values()]
        code = rng.choices(list(ARRANGEMENTS), weights=weights)[0]
        hospitalization["specialArrangement"] = [
            {"coding": [_coding(SPECIAL_ARRANGEMENTS, code, ARRANGEMENTS[code][0])]}
        ]
    if class_code in ("IMP", "EMER") and status == "finished" and rng.random() < DISCHARGE_SHARE:
        weights = [imp if class_code == "IMP" else emer for _, imp, emer in DISCHARGES.values()]
        code = rng.choices(list(DISCHARGES), weights=weights)[0]
        hospitalization["dischargeDisposition"] = {
            "coding": [_coding(DISCHARGE_DISPOSITION, code, DISCHARGES[code][0])]
        }
    return hospitalization
