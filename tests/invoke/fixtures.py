"""The data set the event files are written against, seeded into the moto table before each test.

Search order is period start (UTC), then id; no start sorts first. For these Encounters:

    enc-1006  (no period)                                  Patient/pat-1   Appointment/apt-4
    enc-1008  (no start) .. 2020-05-01                     Patient/pat-2
    enc-1007  2020-12-31T23:30-05:00 .. 2021-01-01T01:00-05:00  Patient/pat-3
    enc-1001  2021-03-01T09:00Z .. 09:30Z                  Patient/pat-1   Appointment/apt-1
    enc-1009  2021-05-20T08:00Z .. 2021-06-05T17:00Z       Patient/pat-2
    enc-1002  2021-06-15T10:00Z .. 11:00Z                  Patient/pat-1   Appointment/apt-2, apt-3
    enc-1004  2021-06-20 .. 2021-06-21 (days)              Patient/pat-2
    enc-1005  2021-07-01T12:00Z .. 13:00Z                  Group/grp-7     Appointment/apt-3
    enc-1003  2022-01-10T08:00+01:00 .. (in progress)      Patient/pat-1
"""

from __future__ import annotations

from typing import Any

from tests.support import encounter

ENCOUNTERS: list[dict[str, Any]] = [
    encounter(
        "enc-1001",
        subject="Patient/pat-1",
        start="2021-03-01T09:00:00Z",
        end="2021-03-01T09:30:00Z",
        appointments=["Appointment/apt-1"],
    ),
    encounter(
        "enc-1002",
        subject="Patient/pat-1",
        start="2021-06-15T10:00:00Z",
        end="2021-06-15T11:00:00Z",
        appointments=["Appointment/apt-2", "Appointment/apt-3"],
    ),
    encounter("enc-1003", subject="Patient/pat-1", start="2022-01-10T08:00:00+01:00", status="in-progress"),
    encounter("enc-1004", subject="Patient/pat-2", start="2021-06-20", end="2021-06-21"),
    encounter(
        "enc-1005",
        subject="Group/grp-7",
        start="2021-07-01T12:00:00Z",
        end="2021-07-01T13:00:00Z",
        appointments=["Appointment/apt-3"],
    ),
    encounter("enc-1006", subject="Patient/pat-1", appointments=["Appointment/apt-4"], status="planned"),
    encounter(
        "enc-1007",
        subject="Patient/pat-3",
        start="2020-12-31T23:30:00-05:00",
        end="2021-01-01T01:00:00-05:00",
    ),
    encounter("enc-1008", subject="Patient/pat-2", end="2020-05-01"),
    encounter("enc-1009", subject="Patient/pat-2", start="2021-05-20T08:00:00Z", end="2021-06-05T17:00:00Z"),
]

# Every Encounter in search order.
ALL_IN_ORDER = [
    "enc-1006",
    "enc-1008",
    "enc-1007",
    "enc-1001",
    "enc-1009",
    "enc-1002",
    "enc-1004",
    "enc-1005",
    "enc-1003",
]


def by_id(encounter_id: str) -> dict[str, Any]:
    return next(resource for resource in ENCOUNTERS if resource["id"] == encounter_id)
