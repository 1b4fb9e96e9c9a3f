"""The search request as a validated model: query-string parsing and the unknown-parameter policy.

Both are pydantic: the criteria by a model built from the registry (criteria_model: a field per
parameter and modifier, each compiling its values through search.criteria), the result
parameters by the SearchQuery model's types. A repeated parameter is AND, a comma inside one
value is OR (FHIR R4 3.1.1).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    create_model,
    field_validator,
)

from fhir_encounter.errors import (
    MAX_NAMED,
    InvalidRequestError,
    NotSupportedError,
    cut_name,
    is_text,
)
from fhir_encounter.formats import GENERAL_PARAMETERS
from fhir_encounter.search.criteria import Criterion, compile_criterion
from fhir_encounter.search.parameters import (
    RESULT_PARAMETERS,
    SEARCH_PARAMETERS,
    ParamType,
    ParseContext,
    SearchParameter,
)
from fhir_encounter.search.sorting import SortKey, parse_sort
from fhir_encounter.store.fields import IndexRow
from fhir_encounter.subsetting import BOTH_TEXT, Subset, parse_elements, parse_summary, subset_for

DEFAULT_COUNT = 10
MAX_COUNT = 100
MAX_VALUES_PER_PARAMETER = 100
# Deeper pages are reached through next links (their cursor resumes the walk where it stopped);
# FHIR Works on AWS and Medplum cap _offset at the same place.
MAX_OFFSET = 10_000
NO_CONTEXT = ParseContext()  # no local base URL known: every absolute URL is another server's
TOTAL_MODES = ("accurate", "estimate", "none")
# FHIR's result parameters this server does not implement: it returns only the matching Encounters,
# never the resources they refer to. Ignored as unknown parameters are, a 400 under strict handling.
NOT_SUPPORTED = ("_include", "_revinclude")
TotalMode = Literal["accurate", "estimate", "none"]


def _ascii_integer(value: object) -> object:
    """Digits 0-9 only (int() also takes "²" and "٣"), at most 9 of them."""
    if isinstance(value, str):
        text = value.strip()
        if not (text.isascii() and text.isdigit()) or len(text) > 9:
            raise ValueError("must be a non-negative integer")
        return int(text)
    return value


NonNegativeInt = Annotated[int, BeforeValidator(_ascii_integer), Field(ge=0)]
PageSize = Annotated[NonNegativeInt, AfterValidator(lambda count: min(count, MAX_COUNT))]


def _summary_mode(text: str) -> str:
    return parse_summary(text)


def _sort_keys(value: object) -> object:
    return parse_sort(value) if isinstance(value, str) else value


class SearchQuery(BaseModel):
    """A validated Encounter search: an AND of criteria, and how to page through the matches."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    criteria: tuple[Criterion, ...] = ()
    # Criteria the caller's access adds (a patient compartment): matched and planned like the
    # client's, bound into cursors, never shown in links.
    restrictions: tuple[Criterion, ...] = ()
    count: PageSize = Field(default=DEFAULT_COUNT, alias="_count")
    offset: NonNegativeInt = Field(default=0, alias="_offset")
    total_mode: TotalMode = Field(default="accurate", alias="_total")
    cursor: str | None = Field(default=None, alias="_cursor")
    # What each Encounter keeps (subsetting.py); _summary=count is parsed into count=0.
    summary: Annotated[str, AfterValidator(_summary_mode)] | None = Field(default=None, alias="_summary")
    elements: tuple[str, ...] | None = Field(default=None, alias="_elements")
    sort: Annotated[tuple[SortKey, ...], BeforeValidator(_sort_keys)] = Field(default=(), alias="_sort")

    @field_validator("elements", mode="before")
    @classmethod
    def _known_elements(cls, value: object, info: ValidationInfo) -> object:
        """Unknown names are ignored, or a 400 under ``Prefer: handling=strict``."""
        strict = bool(info.context and info.context.get("strict"))
        return parse_elements(value, strict=strict) if isinstance(value, str) else value

    @property
    def criteria_params(self) -> tuple[tuple[str, str], ...]:
        """(name, value) as the client gave them, in registry order: what links carry."""
        return tuple((c.name, c.text) for c in self.criteria)

    @property
    def sort_params(self) -> tuple[tuple[str, str], ...]:
        """``_sort`` as links carry it (normalised): none for the default order."""
        return (("_sort", ",".join(key.text for key in self.sort)),) if self.sort else ()

    @property
    def descending(self) -> bool:
        return bool(self.sort) and self.sort[0].descending

    @property
    def order(self) -> str:
        """The stored order the walk reads (search.sorting): "" for the sort key's."""
        return self.sort[0].order if self.sort else ""

    @property
    def subset(self) -> Subset | None:
        return subset_for(self.summary, self.elements)

    @property
    def all_criteria(self) -> tuple[Criterion, ...]:
        return (*self.criteria, *self.restrictions)

    @property
    def bound_params(self) -> tuple[tuple[str, str], ...]:
        """Every criterion, restrictions included: what a cursor is bound to."""
        return tuple((c.name, c.text) for c in self.all_criteria)

    @property
    def counts_total(self) -> bool:
        """_total=none skips counting: the walk stops one match after the page."""
        return self.total_mode != "none"

    def values_of(self, name: str) -> list[tuple[Any, ...]]:
        """The OR-ed values of each occurrence of one parameter in its plain (keyed) form."""
        return [c.values for c in self.all_criteria if c.parameter.name == name and c.on_rows]

    def matches(self, row: IndexRow, now: int) -> bool:
        """Whether one Encounter (as its index row) satisfies every criterion (all matched on rows)."""
        return all(c.matches_row(row, now) for c in self.all_criteria)

    def within_compartment(self, compartment: str) -> SearchQuery:
        """The query narrowed to Encounters whose subject is ``compartment`` (``Patient/<id>``)."""
        restriction = Criterion(
            SEARCH_PARAMETERS["patient"], compartment, (frozenset({compartment}),), on_rows=True
        )
        return self.model_copy(update={"restrictions": (*self.restrictions, restriction)})


def parse_search(
    multi_value_params: Mapping[str, Sequence[str]] | None,
    *,
    strict: bool = False,
    context: ParseContext = NO_CONTEXT,
) -> tuple[SearchQuery, list[str]]:
    """The validated query, and the names of the parameters it ignored.

    Unknown parameters are ignored (400 under ``Prefer: handling=strict``); modifiers are a 400;
    empty values are ignored.
    """
    accepted: dict[str, list[str]] = {}
    modified: dict[str, dict[str, list[str]]] = {}  # name -> modifier -> values
    ignored: list[str] = []
    for key, values in (multi_value_params or {}).items():
        name, colon, modifier = key.partition(":")
        if name in GENERAL_PARAMETERS:
            continue  # content negotiation: formats.wants_pretty
        if name in NOT_SUPPORTED and strict:
            raise NotSupportedError(
                f"Search parameter '{cut_name(key)}' is not supported: this server returns the matching "
                "Encounters only, not the resources they refer to or that refer to them"
            )
        if name not in SEARCH_PARAMETERS and name not in RESULT_PARAMETERS:
            ignored.append(key)
            continue
        if colon and (name in RESULT_PARAMETERS or modifier not in SEARCH_PARAMETERS[name].modifiers):
            raise NotSupportedError(
                f"Search parameter '{name}' does not support the modifier ':{cut_name(modifier)}'"
            )
        present = [value for value in values if value.strip()]
        if not all(is_text(value) for value in present):
            raise _invalid(name, "not valid Unicode text (a lone surrogate)")
        if name in SEARCH_PARAMETERS and SEARCH_PARAMETERS[name].type is ParamType.DATE:
            # An unencoded '+' of a zone offset arrives decoded as a space: restore it.
            present = [value.replace(" ", "+") for value in present]
        if present and colon:
            modified.setdefault(name, {})[modifier] = present
        elif present:
            accepted[name] = present
    if strict and ignored:
        raise NotSupportedError(f"Unknown search parameter(s): {name_list(ignored)}")
    given = {name: texts for name, texts in accepted.items() if name in SEARCH_PARAMETERS}
    given.update(
        (f"{name}:{m}", texts) for name, by_modifier in modified.items() for m, texts in by_modifier.items()
    )
    results: dict[str, Any] = {"criteria": validated_criteria(given, context)}
    for name in RESULT_PARAMETERS:
        if name in accepted:
            if len(accepted[name]) > 1:
                raise _invalid(name, "must be given once")
            results[name] = accepted[name][0].strip()
    try:
        query = SearchQuery.model_validate(results, context={"strict": strict})
    except ValidationError as error:
        first = error.errors()[0]
        if first["type"] == "literal_error":
            message = f"must be one of {', '.join(TOTAL_MODES)}"
        else:
            message = str(first.get("ctx", {}).get("error", first["msg"]))
        raise _invalid(str(first["loc"][0]), message) from None
    if query.summary is not None and query.elements is not None:
        raise InvalidRequestError(BOTH_TEXT)
    if query.summary == "count":  # R4: "just return a count of the matching resources", as _count=0
        query = query.model_copy(update={"count": 0, "summary": None})
    if query.offset > MAX_OFFSET and query.cursor is None:
        raise NotSupportedError(
            f"_offset above {MAX_OFFSET} is not supported: follow the Bundle's next links to page further"
        )
    return query, sorted(ignored)


# ---- the criteria's model, built from the registry ----------------------------------------------


def validated_criteria(given: Mapping[str, list[str]], context: ParseContext) -> tuple[Criterion, ...]:
    """The criteria of ``given`` (``name`` or ``name:modifier`` -> the occurrences' texts),
    validated by the registry's criteria model, in registry order (each parameter's plain form,
    then its modifiers by name). A bad value raises the InvalidRequestError that names it."""
    model, fields = criteria_model()
    validated = model.model_validate(given, context={"parse": context})
    return tuple(criterion for field in fields for criterion in getattr(validated, field))


_MODELS: dict[tuple[tuple[str, int], ...], tuple[type[BaseModel], tuple[str, ...]]] = {}


def criteria_model() -> tuple[type[BaseModel], tuple[str, ...]]:
    """The pydantic model of a search's criteria: one field per registry parameter and modifier
    it takes (aliased ``name`` / ``name:modifier``), each a tuple of compiled Criterion; and its
    field names in registry order. Built once per registry (a test may add an entry)."""
    registry = tuple((name, id(parameter)) for name, parameter in SEARCH_PARAMETERS.items())
    if (found := _MODELS.get(registry)) is not None:
        return found
    definitions: dict[str, Any] = {}
    for name, parameter in SEARCH_PARAMETERS.items():
        for modifier in ("", *sorted(parameter.modifiers)):
            alias = f"{name}:{modifier}" if modifier else name
            compiled = Annotated[tuple[Criterion, ...], BeforeValidator(_compiler(parameter, modifier))]
            definitions[f"p{len(definitions)}"] = (compiled, Field(default=(), alias=alias))
    model = create_model(
        "EncounterCriteria",
        __config__=ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True),
        **definitions,
    )
    _MODELS[registry] = model, tuple(definitions)
    return _MODELS[registry]


def _compiler(parameter: SearchParameter, modifier: str) -> Callable[[Any, ValidationInfo], Any]:
    name = f"{parameter.name}:{modifier}" if modifier else parameter.name

    def compile_all(texts: Any, info: ValidationInfo) -> Any:
        if not isinstance(texts, list):
            return texts
        context = info.context["parse"] if info.context else NO_CONTEXT
        return tuple(compile_criterion(parameter, modifier, text, context) for text in _bounded(name, texts))

    return compile_all


def name_list(names: Sequence[str]) -> str:
    """At most MAX_NAMED names, each cut to MAX_NAME_LENGTH, and how many more there were."""
    shown = ", ".join(cut_name(name) for name in sorted(names)[:MAX_NAMED])
    more = len(names) - MAX_NAMED
    return f"{shown} and {more} more" if more > 0 else shown


def _bounded(name: str, values: Sequence[str]) -> Sequence[str]:
    if sum(len(value.split(",")) for value in values) > MAX_VALUES_PER_PARAMETER:
        raise InvalidRequestError(
            f"Search parameter '{name}' has more than {MAX_VALUES_PER_PARAMETER} values"
        )
    return values


def _invalid(name: str, message: str) -> InvalidRequestError:
    return InvalidRequestError(f"Invalid value for search parameter '{name}': {message}")


criteria_model()  # built at import (init, in the SnapStart snapshot), not on a first request
