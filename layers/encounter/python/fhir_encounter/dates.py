"""FHIR date, dateTime and instant values as inclusive ranges of UTC microseconds.

A value stands for the whole span its precision names (``2021`` is all of 2021; no zone is UTC).
Stored periods and search values go through the same parser, so both sides agree.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime

MICROS_PER_SECOND = 1_000_000
MICROS_PER_DAY = 86_400 * MICROS_PER_SECOND
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()

# Stands for a missing period.start (-infinity) or period.end (+infinity); beyond any real value
# (year 9999 ends near 2.5e17 microseconds).
NEG_INFINITY = -(10**18)
POS_INFINITY = 10**18

# Year, month, day, then optional time. Search values may leave out the seconds (FHIR search allows
# minute precision) and the zone; stored values are checked more strictly by the loader.
_DATE_TIME = re.compile(
    r"(?P<year>\d{4})"
    r"(?:-(?P<month>\d{2})"
    r"(?:-(?P<day>\d{2})"
    r"(?:T(?P<hour>\d{2}):(?P<minute>\d{2})"
    r"(?::(?P<second>\d{2})(?:\.(?P<fraction>\d{1,12}))?)?"
    r"(?P<zone>Z|[+\- ]\d{2}:\d{2})?"
    r")?)?)?",
    re.ASCII,  # FHIR digits are 0-9; without it \d also takes other scripts' digits
)


class DateValueError(ValueError):
    """A text that is not a FHIR date, dateTime or instant."""


@dataclass(frozen=True, slots=True)
class DateRange:
    """An inclusive range of UTC microseconds since the epoch."""

    low: int
    high: int


@dataclass(frozen=True, slots=True)
class PeriodBounds:
    """What a search implies about the periods it can match: bounds on the start (a missing start
    is -infinity) and on the end (a missing end is +infinity), and whether a period is needed."""

    start: DateRange
    end: DateRange
    needs_period: bool = True

    def meet(self, other: PeriodBounds) -> PeriodBounds:
        """Both hold (AND)."""
        return PeriodBounds(
            DateRange(max(self.start.low, other.start.low), min(self.start.high, other.start.high)),
            DateRange(max(self.end.low, other.end.low), min(self.end.high, other.end.high)),
            self.needs_period or other.needs_period,
        )

    def join(self, other: PeriodBounds) -> PeriodBounds:
        """Either holds (OR): the hull of each range."""
        return PeriodBounds(
            DateRange(min(self.start.low, other.start.low), max(self.start.high, other.start.high)),
            DateRange(min(self.end.low, other.end.low), max(self.end.high, other.end.high)),
            self.needs_period and other.needs_period,
        )


EVERYTHING = DateRange(NEG_INFINITY, POS_INFINITY)
ANY_PERIOD = PeriodBounds(EVERYTHING, EVERYTHING, needs_period=False)  # no date criterion


def parse_range(text: str) -> DateRange:
    """The range a FHIR date/dateTime value covers, by its precision.

    >>> r = parse_range("2021")
    >>> format_instant(r.low), format_instant(r.high)
    ('2021-01-01T00:00:00.000000Z', '2021-12-31T23:59:59.999999Z')
    """
    match = _DATE_TIME.fullmatch(text)
    if match is None:
        raise DateValueError("not a FHIR date or dateTime")
    parts = match.groupdict()
    year = int(parts["year"])
    if year < 1:
        raise DateValueError("year out of range")
    if parts["month"] is None:
        start = _ordinal(year, 1, 1)
        return _range_from_days(start, start + (366 if calendar.isleap(year) else 365), 0)
    month = int(parts["month"])
    if not 1 <= month <= 12:
        raise DateValueError("month out of range")
    if parts["day"] is None:
        start = _ordinal(year, month, 1)
        return _range_from_days(start, start + calendar.monthrange(year, month)[1], 0)
    day = int(parts["day"])
    if not 1 <= day <= calendar.monthrange(year, month)[1]:
        raise DateValueError("day out of range")
    offset = _zone_offset_micros(parts["zone"])
    if parts["hour"] is None:
        start = _ordinal(year, month, day)
        return _range_from_days(start, start + 1, offset)
    hour, minute = int(parts["hour"]), int(parts["minute"])
    if hour > 23 or minute > 59:
        raise DateValueError("time out of range")
    base = (_ordinal(year, month, day) - _EPOCH_ORDINAL) * MICROS_PER_DAY
    base += (hour * 3600 + minute * 60) * MICROS_PER_SECOND - offset
    if parts["second"] is None:
        return DateRange(base, base + 60 * MICROS_PER_SECOND - 1)
    second = int(parts["second"])
    if second > 60:  # 60 is a leap second, allowed by FHIR's regex
        raise DateValueError("time out of range")
    base += second * MICROS_PER_SECOND
    fraction = parts["fraction"]
    if fraction is None:
        return DateRange(base, base + MICROS_PER_SECOND - 1)
    digits = fraction[:6]
    low = base + int(digits.ljust(6, "0"))
    step = 10 ** (6 - len(digits))
    return DateRange(low, low + step - 1)


def instant_now() -> str:
    """Now as a FHIR instant in UTC, to the millisecond (meta.lastUpdated, Bundle.meta)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def format_instant(micros: int) -> str:
    """Fixed-width UTC text of an instant, so that string order is time order."""
    days, rest = divmod(micros, MICROS_PER_DAY)
    ordinal = days + _EPOCH_ORDINAL
    if ordinal < 1:
        return "0001-01-01T00:00:00.000000Z"
    if ordinal > date.max.toordinal():
        return "9999-12-31T23:59:59.999999Z"
    day = date.fromordinal(ordinal)
    seconds, fraction = divmod(rest, MICROS_PER_SECOND)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    return f"{day.isoformat()}T{hours:02d}:{minutes:02d}:{seconds:02d}.{fraction:06d}Z"


def _ordinal(year: int, month: int, day: int) -> int:
    return date(year, month, day).toordinal()


def _range_from_days(first_day: int, next_day: int, offset: int) -> DateRange:
    low = (first_day - _EPOCH_ORDINAL) * MICROS_PER_DAY - offset
    high = (next_day - _EPOCH_ORDINAL) * MICROS_PER_DAY - offset - 1
    return DateRange(low, high)


def _zone_offset_micros(zone: str | None) -> int:
    if zone is None or zone == "Z":
        return 0
    hours, minutes = int(zone[1:3]), int(zone[4:6])
    if hours > 14 or minutes > 59 or (hours == 14 and minutes):
        raise DateValueError("time zone offset out of range")
    sign = -1 if zone[0] == "-" else 1  # a space is a '+' that the query string decoded
    return sign * (hours * 3600 + minutes * 60) * MICROS_PER_SECOND
