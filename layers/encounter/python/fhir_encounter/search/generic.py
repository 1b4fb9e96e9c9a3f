"""How each search parameter type compiles one value, and how it matches (FHIR R4 search.html).

Token and reference values compile to the link keys the writer indexes (store.values): a
resource matches when it is linked under any of them, which is decided the same way on the
resource itself (``value_keys``), so the index and the matcher cannot disagree. Date and quantity
values, and the modifiers that no key can find (``:not``, ``:missing``), match on the resource.

Choices where R4 leaves room (docs/api.md says them too):
- a comma separates alternatives unless escaped (``\\,``); ``\\|`` and ``\\\\`` escape too;
- ``:not`` matches an Encounter none of whose values matches any alternative (one with no value
  at all included);
- a reference value naming a type the parameter cannot point to matches nothing; as a
  ``:[type]`` modifier it is a 400;
- a reference is found by its literal form only (``Type/id``, or a URL, and a URL under this
  server's base is the same as ``Type/id``); a logical or conditional one only by ``:identifier``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from fhir_encounter.dates import NEG_INFINITY, POS_INFINITY, DateRange, DateValueError, parse_range
from fhir_encounter.references import ReferenceValueError, normalize_reference
from fhir_encounter.store.values import (
    IDENTIFIER_SUFFIX,
    ValueKind,
    ValuePath,
    elements_at,
    link_key,
    reference_type,
    value_keys,
)

Body = Callable[[Mapping[str, Any], int], bool]  # (resource, now in microseconds) -> matches
UCUM = "http://unitsofmeasure.org"
SECONDS = {
    "s": Decimal(1),
    "min": Decimal(60),
    "h": Decimal(3600),
    "d": Decimal(86_400),
    "wk": Decimal(604_800),
}
MAX_NUMBER_LENGTH = 40
QUANTITY_PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")


class CompileError(ValueError):
    """A value or modifier this parameter cannot take; the message says why."""


@dataclass(frozen=True, slots=True)
class Compiled:
    """One criterion's values, compiled: ``keys`` when the value index finds exactly its matches
    (any of the keys), and ``body``, the match on the resource, always."""

    keys: frozenset[str] | None
    body: Body
    # (namespace, code) of each ``code`` value of any system: its key ``=code`` is not linked,
    # the table's systems say which keys are (store.values.any_system_keys).
    any_system: frozenset[tuple[str, str]] = frozenset()


# ---- escapes -----------------------------------------------------------------------------------


def split_escaped(text: str, separator: str) -> list[str]:
    """``text`` split at each ``separator`` no backslash escapes; the escapes are kept."""
    if re.search(r"(?<!\\)(?:\\\\)*\\$", text):
        raise CompileError("a value ends with a lone backslash (escape it as \\\\)")
    unit = rf"(?:\\.|[^\\{re.escape(separator)}])*"
    return re.findall(rf"(?:^|(?<={re.escape(separator)})){unit}", text) if text else [""]


def unescape(text: str) -> str:
    out: list[str] = []
    chars = iter(text)
    for char in chars:
        out.append(next(chars, "") if char == "\\" else char)
    return "".join(out)


# ---- token -------------------------------------------------------------------------------------


def parse_token(text: str) -> tuple[str | None, str | None]:
    """(system, code) of ``code``, ``system|code``, ``|code`` or ``system|``: system None is any
    system, "" no system; code None is any code."""
    parts = split_escaped(text, "|")
    if len(parts) == 1:
        code = unescape(parts[0])
        if not code:
            raise CompileError("needs a code, system|code, |code or system|")
        return None, code
    if len(parts) > 2 or parts == ["", ""]:
        raise CompileError("needs a code, system|code, |code or system|")
    return unescape(parts[0]), unescape(parts[1]) or None


def token_key(namespace: str, system: str | None, code: str | None) -> str:
    if system is None:
        return link_key(namespace, f"={code}")
    return link_key(namespace, f"{system}|{code or ''}")


def _keys_match(path: ValuePath, keys: frozenset[str]) -> Body:
    return lambda resource, now: not keys.isdisjoint(value_keys(path, resource))


def _tokens(path: ValuePath, namespace: str, alternatives: list[str]) -> Compiled:
    parsed = [parse_token(a) for a in alternatives]
    keys = frozenset(token_key(namespace, system, code) for system, code in parsed)
    any_system = frozenset((namespace, code) for system, code in parsed if system is None and code)
    return Compiled(keys, _keys_match(path, keys), any_system)


def token(path: ValuePath, alternatives: list[str]) -> Compiled:
    return _tokens(path, path.name, alternatives)


def identifier(path: ValuePath, alternatives: list[str]) -> Compiled:
    """``:identifier`` on a reference: its Reference.identifier as a token."""
    return _tokens(path, path.name + IDENTIFIER_SUFFIX, alternatives)


# ---- reference ---------------------------------------------------------------------------------


def reference(
    path: ValuePath, alternatives: list[str], allowed: tuple[str, ...], local_bases: frozenset[str]
) -> Compiled:
    """``id`` (each allowed type), ``Type/id`` or a URL; a URL under one of ``local_bases`` is
    ``Type/id``, and ``Type/id`` also finds references stored as a URL under them."""
    forms: set[str] = set()
    for alternative in alternatives:
        try:
            found = normalize_reference(
                unescape(alternative), allowed, allow_bare=True, local_bases=local_bases
            )
        except ReferenceValueError as error:
            if error.resource_type is None:
                raise CompileError(f"needs an id, a reference like {allowed[0]}/123, or a URL") from None
            continue  # a type the parameter cannot point to: matches nothing
        for form in found:
            forms.add(form)
            if "://" not in form:
                forms.update(f"{base.rstrip('/')}/{form}" for base in local_bases)
    keys = frozenset(link_key(path.name, form) for form in forms)
    return Compiled(keys, _keys_match(path, keys))


# ---- :missing and :not -------------------------------------------------------------------------


def present(path: ValuePath | None, only: str | None, resource: Mapping[str, Any]) -> bool:
    """Whether the resource has a value at ``path`` (of type ``only``, when given)."""
    if path is None:
        return bool(resource.get("id"))
    found = elements_at(resource, path.steps)
    if path.kind is ValueKind.PERIOD:
        found = [p for p in found if isinstance(p, Mapping) and (p.get("start") or p.get("end"))]
    if only is not None:
        found = [ref for ref in found if reference_type(ref) == only]
    return bool(found)


def missing(path: ValuePath | None, only: str | None, alternatives: list[str]) -> Compiled:
    wanted: set[bool] = set()
    for alternative in alternatives:
        if alternative not in ("true", "false"):
            raise CompileError(":missing takes true or false")
        wanted.add(alternative == "true")
    return Compiled(None, lambda resource, now: (not present(path, only, resource)) in wanted)


def negated(compiled: Compiled) -> Compiled:
    body = compiled.body
    return Compiled(None, lambda resource, now: not body(resource, now))


# ---- date --------------------------------------------------------------------------------------


def date_ranges(path: ValuePath, resource: Mapping[str, Any]) -> list[DateRange]:
    """The ranges of a date path's values: a Period spans its start's low to its end's high (a
    missing side is infinite), an instant or dateTime its precision."""
    ranges = []
    for item in elements_at(resource, path.steps):
        try:
            if path.kind is ValueKind.PERIOD:
                if not isinstance(item, Mapping) or not (item.get("start") or item.get("end")):
                    continue
                start, end = item.get("start"), item.get("end")
                low = parse_range(start).low if start else NEG_INFINITY
                high = parse_range(end).high if end else POS_INFINITY
                ranges.append(DateRange(low, max(low, high)))
            elif isinstance(item, str):
                ranges.append(parse_range(item))
        except DateValueError:
            continue
    return ranges


def date(path: ValuePath, criteria: list[Any], matches: Callable[[DateRange, Any, int], bool]) -> Compiled:
    """``criteria``: parsed date values; ``matches``: R4's prefix rule for one range."""
    return Compiled(
        None,
        lambda resource, now: any(
            matches(target, criterion, now)
            for target in date_ranges(path, resource)
            for criterion in criteria
        ),
    )


# ---- quantity ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QuantityValue:
    prefix: str
    number: Decimal
    system: str | None  # None: a bare number (any unit); "": ``number||code`` (code or unit)
    code: str | None

    @property
    def half(self) -> Decimal:
        """Half a unit of the last significant digit: the implicit range of ``eq`` and ``ne``."""
        exponent = self.number.as_tuple().exponent
        return Decimal(5) * Decimal(10) ** (int(exponent) - 1)


def parse_quantity(text: str) -> QuantityValue:
    """``[prefix]number``, ``[prefix]number|system|code`` or ``[prefix]number||code``."""
    prefix, rest = (text[:2], text[2:]) if text[:2] in QUANTITY_PREFIXES else ("eq", text)
    parts = [unescape(part) for part in split_escaped(rest, "|")]
    if len(parts) not in (1, 3) or (len(parts) == 3 and not parts[2]):
        raise CompileError("needs [prefix]number, [prefix]number|system|code or [prefix]number||code")
    number = parts[0]
    if not number or not all(c.isascii() and (c.isdigit() or c in ".-+eE") for c in number):
        raise CompileError("needs a number, such as 30, 1.5 or 1e2")
    try:
        value = Decimal(number)
    except InvalidOperation:
        raise CompileError("needs a number, such as 30, 1.5 or 1e2") from None
    if not value.is_finite() or len(number) > MAX_NUMBER_LENGTH or abs(int(value.as_tuple().exponent)) > 100:
        raise CompileError("needs a number, such as 30, 1.5 or 1e2")
    if len(parts) == 1:
        return QuantityValue(prefix, value, None, None)
    return QuantityValue(prefix, value, parts[1], parts[2])


def _compare(prefix: str, number: Decimal, half: Decimal, value: Decimal) -> bool:
    """R4's prefixes for a number: eq and ne on the value's precision range, the rest exactly
    (a stored Duration is a point, so sa and eb are gt and lt); ap within 10%."""
    match prefix:
        case "eq":
            return number - half <= value < number + half
        case "ne":
            return not number - half <= value < number + half
        case "gt" | "sa":
            return value > number
        case "lt" | "eb":
            return value < number
        case "ge":
            return value >= number
        case "le":
            return value <= number
        case _:  # ap
            return abs(value - number) <= abs(number) / 10


def quantity_matches(search: QuantityValue, item: object) -> bool:
    if not isinstance(item, Mapping):
        return False
    raw = item.get("value")
    if isinstance(raw, bool) or not isinstance(raw, int | float | Decimal):
        return False
    value = Decimal(str(raw))
    if search.code is None:
        return _compare(search.prefix, search.number, search.half, value)
    stored_code = item.get("code")
    if (
        search.code in SECONDS
        and search.system in ("", UCUM)
        and item.get("system") == UCUM
        and stored_code in SECONDS
    ):
        scale = SECONDS[search.code]
        seconds = value * SECONDS[stored_code]
        return _compare(search.prefix, search.number * scale, search.half * scale, seconds)
    if search.system == "":
        same_unit = search.code in (stored_code, item.get("unit"))
    else:
        same_unit = item.get("system") == search.system and stored_code == search.code
    return same_unit and _compare(search.prefix, search.number, search.half, value)


def quantity(path: ValuePath, alternatives: list[str]) -> Compiled:
    searches = [parse_quantity(a) for a in alternatives]
    return Compiled(
        None,
        lambda resource, now: any(
            quantity_matches(search, item)
            for item in elements_at(resource, path.steps)
            for search in searches
        ),
    )
