"""One occurrence of a search parameter, compiled: a Criterion. Its values OR together; the
criteria of a query AND (FHIR R4 3.1.1).

A keyed parameter's plain form (``patient=``, ``date=``, …) is parsed by its registry entry and
matched on index rows; every other form is compiled generically (search.generic) by the
parameter's type and path: link keys where the value index finds the matches, and a match on the
resource always.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fhir_encounter.errors import InvalidRequestError, NotSupportedError, cut_name
from fhir_encounter.search import generic
from fhir_encounter.search.generic import Body, Compiled, CompileError, split_escaped
from fhir_encounter.search.parameters import (
    ParamType,
    ParseContext,
    SearchParameter,
    _date_parser,
    _parse_id,
    _reference_parser,
    date_matches,
)
from fhir_encounter.store.fields import IndexRow


@dataclass(frozen=True, slots=True)
class Criterion:
    parameter: SearchParameter
    text: str  # as the client sent it: what links carry
    # A keyed form's parsed values, matched on index rows; a date's (they bound an instant's order).
    values: tuple[Any, ...] = ()
    modifier: str = ""
    keys: frozenset[str] | None = None  # value keys: the matches have one of them
    any_system: frozenset[tuple[str, str]] = frozenset()  # of the keys, the codes of any system
    # The match on the resource (None: only on index rows); equal criteria compile equal text.
    body: Body | None = field(default=None, compare=False)
    on_rows: bool = False  # a keyed form: matched on the keyed indexes' rows by its values

    @property
    def name(self) -> str:
        """The parameter as the client named it (with its modifier)."""
        return f"{self.parameter.name}:{self.modifier}" if self.modifier else self.parameter.name

    def matches_row(self, row: IndexRow, now: int) -> bool:
        match = self.parameter.match
        if match is None:
            raise ValueError(f"{self.name} is not matched on index rows")
        return match(self.parameter.row_value(row), self.values, now)

    def matches_resource(self, resource: Mapping[str, Any], now: int) -> bool:
        if self.body is None:
            raise ValueError(f"{self.name} is not matched on resources")
        return self.body(resource, now)


def compile_criterion(
    parameter: SearchParameter, modifier: str, text: str, context: ParseContext
) -> Criterion:
    """The criterion of ``name[:modifier]=text``; InvalidRequestError / NotSupportedError say
    what is wrong, naming the parameter."""
    name = parameter.name
    if modifier and modifier not in parameter.modifiers:
        raise NotSupportedError(
            f"Search parameter '{name}' does not support the modifier ':{cut_name(modifier)}'"
        )
    try:
        return _compile(parameter, modifier, text, context)
    except (CompileError, ValueError) as error:
        raise InvalidRequestError(f"Invalid value for search parameter '{name}': {error}") from None


def _compile(parameter: SearchParameter, modifier: str, text: str, context: ParseContext) -> Criterion:
    path = parameter.path
    if parameter.parse is not None and (not modifier or modifier in parameter.targets):
        parse = parameter.parse
        if modifier:  # :[type] narrows a keyed reference to one of its types
            parse = _reference_parser(parameter.name, (modifier,))
        values = tuple(parse(value.strip(), context) for value in text.split(","))
        if path is not None and path.linked and path.literal:  # status: linked as well
            try:
                linked = generic.token(path, [a.strip() for a in split_escaped(text, ",")])
            except CompileError:  # "|": a value the parser took as matching nothing
                linked = Compiled(frozenset(), lambda resource, now: False)
            return Criterion(
                parameter, text, values, modifier, linked.keys, linked.any_system, linked.body, on_rows=True
            )
        return Criterion(parameter, text, values, modifier, on_rows=True)
    alternatives = [a.strip() for a in split_escaped(text, ",")]
    if any(not a for a in alternatives):
        raise CompileError("an empty value between commas")
    if modifier == "missing":
        compiled = generic.missing(path, parameter.only, alternatives)
        return Criterion(parameter, text, modifier=modifier, body=compiled.body)
    compiled = _generic(parameter, modifier, alternatives, context)
    dates: tuple[Any, ...] = ()
    if parameter.type is ParamType.DATE and not modifier:  # what bounds an instant's order (planning)
        parse_date = _date_parser(parameter.name)
        dates = tuple(parse_date(generic.unescape(a), context) for a in alternatives)
    return Criterion(parameter, text, dates, modifier, compiled.keys, compiled.any_system, compiled.body)


def _generic(
    parameter: SearchParameter, modifier: str, alternatives: list[str], context: ParseContext
) -> Compiled:
    path = parameter.path
    if path is None:  # _id:not
        ids = frozenset(_parse_id(a, context) for a in alternatives)
        return Compiled(None, lambda resource, now: resource.get("id") not in ids)
    match parameter.type:
        case ParamType.TOKEN:
            compiled = generic.token(path, alternatives)
            return generic.negated(compiled) if modifier == "not" else compiled
        case ParamType.REFERENCE:
            if modifier == "identifier":
                return generic.identifier(path, alternatives)
            allowed = (modifier,) if modifier else (parameter.only,) if parameter.only else parameter.targets
            return generic.reference(path, alternatives, allowed, context.local_bases)
        case ParamType.DATE:
            parse = _date_parser(parameter.name)
            criteria = [parse(generic.unescape(a), context) for a in alternatives]
            return generic.date(path, criteria, date_matches)
        case ParamType.QUANTITY:
            return generic.quantity(path, alternatives)
    raise CompileError(f"a {parameter.type} parameter is not searchable")
