"""Repository and paging under moto: index choice, order, totals, cursors, and no Scan anywhere."""

from __future__ import annotations

from collections import Counter
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from fhir_encounter import searching
from tests.support import encounter, ids_of, search


@pytest.fixture
def calls(table: Any) -> Counter[str]:
    """DynamoDB operations made on the table's client from now on (the handlers use it, and so
    does the ``put`` writer: clear the counter after writing), and the items their Queries return."""
    counter: Counter[str] = Counter()

    def before(event_name: str, **_: Any) -> None:
        counter[event_name.rsplit(".", 1)[-1]] += 1

    def after(http_response: Any, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name == "Query":
            counter["query_items"] += parsed.get("Count", 0)

    table.meta.events.register("before-call.dynamodb", before)
    table.meta.events.register("after-call.dynamodb", after)
    return counter


def link(bundle: dict[str, Any], relation: str) -> str | None:
    return next((entry["url"] for entry in bundle["link"] if entry["relation"] == relation), None)


def query_of(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def walk(first_query: str) -> tuple[list[str], list[dict[str, Any]]]:
    """Follow next links from a first search; the ids in order and every page."""
    status, _, bundle = search(first_query)
    assert status == 200
    pages = [bundle]
    while (url := link(bundle, "next")) is not None:
        status, _, bundle = search(query_of(url))
        assert status == 200
        pages.append(bundle)
    return [i for page in pages for i in ids_of(page)], pages


@pytest.fixture
def many(put: Any) -> list[str]:
    """37 Encounters for two patients: same starts, open ends, no periods, several months."""
    resources = []
    for n in range(37):
        patient = "Patient/p1" if n % 3 else "Patient/p2"
        if n % 10 == 0:
            resources.append(encounter(f"e{n:02d}", subject=patient))  # planned: no period
        elif n % 7 == 0:
            resources.append(encounter(f"e{n:02d}", subject=patient, start=f"2023-0{n % 9 + 1}-01T08:00:00Z"))
        else:
            day = n % 28 + 1
            resources.append(
                encounter(
                    f"e{n:02d}",
                    subject=patient,
                    start=f"2022-{n % 12 + 1:02d}-{day:02d}T09:00:00+02:00",
                    end=f"2022-{n % 12 + 1:02d}-{day:02d}T10:00:00+02:00",
                    appointments=[f"Appointment/a{n % 4}"],
                )
            )
    put(*resources)
    return [str(r["id"]) for r in resources]


def test_walking_next_links_visits_every_match_once(many: list[str]) -> None:
    walked, pages = walk("_count=5")
    assert len(walked) == len(set(walked)) == 37
    assert set(walked) == set(many)
    assert all(page["total"] == 37 for page in pages)
    assert len(pages) == 8
    _, _, one_page = search("_count=100")
    assert ids_of(one_page) == walked


def test_walk_of_a_patient_search_matches_one_big_page(many: list[str]) -> None:
    walked, pages = walk("patient=p1&_count=4")
    _, _, one_page = search("patient=p1&_count=100")
    assert walked == ids_of(one_page)
    assert pages[0]["total"] == len(walked) == 24


def test_order_is_period_start_then_id_with_missing_starts_first(put: Any) -> None:
    put(
        encounter("b", start="2021-01-01T00:00:00Z"),
        encounter("a", start="2021-01-01T00:00:00Z"),
        encounter("z"),
        encounter("c", start="2020-12-31T23:00:00-02:00"),  # 2021-01-01T01:00Z
        encounter("y", end="2019-01-01"),
    )
    _, _, bundle = search("")
    assert ids_of(bundle) == ["y", "z", "a", "b", "c"]


def test_next_pages_read_about_one_page_of_index_rows(many: list[str], calls: Counter[str]) -> None:
    _, _, first = search("_count=5")
    calls.clear()
    url = link(first, "next")
    assert url is not None
    assert "_cursor" in query_of(url)
    status, _, second = search(query_of(url))
    assert status == 200
    assert len(ids_of(second)) == 5
    # a page and a share of it from each partition the merge opened, not the 37 rows before
    assert calls["query_items"] <= 15
    assert calls["Scan"] == 0


def test_no_search_path_scans(many: list[str], calls: Counter[str]) -> None:
    for query in [
        "",
        "patient=p1",
        "subject=p2",
        "appointment=a1",
        "date=ge2022-06",
        "_id=e01,e02",
        "_count=0",
    ]:
        assert search(query)[0] == 200
    assert calls["Scan"] == 0
    assert calls["Query"] > 0
    assert calls["BatchGetItem"] > 0


def test_bare_offset_jump_skips_without_fetching_earlier_resources(
    many: list[str], calls: Counter[str]
) -> None:
    status, _, bundle = search("_count=5&_offset=30")
    assert status == 200
    _, _, whole = search("_count=100")
    assert ids_of(bundle) == ids_of(whole)[30:35]
    assert calls["BatchGetItem"] == 2  # one for the page, one for the whole listing


def test_date_search_skips_buckets_outside_the_bounds(many: list[str], calls: Counter[str]) -> None:
    status, _, bundle = search("date=sa2022-12-31")
    assert status == 200
    assert set(ids_of(bundle)) == {"e07", "e14", "e21", "e28", "e35"}
    assert calls["Query"] <= 9  # only the 2023 buckets


def test_appointment_or_list_finds_each_encounter_once(put: Any) -> None:
    put(
        encounter(
            "multi", start="2022-01-01", appointments=["Appointment/x", "Appointment/y", "Appointment/z"]
        ),
        encounter("single", start="2022-02-01", appointments=["Appointment/y"]),
    )
    _, _, bundle = search("appointment=x,Appointment/y,https://example.org/fhir/Appointment/z")
    assert ids_of(bundle) == ["multi", "single"]
    assert bundle["total"] == 2


def test_reload_with_fewer_appointments_drops_the_old_link(put: Any) -> None:
    put(encounter("e", start="2022-01-01", appointments=["Appointment/x", "Appointment/y"]))
    put(encounter("e", start="2022-01-01", appointments=["Appointment/y"]))
    assert search("appointment=x")[2]["total"] == 0
    assert ids_of(search("appointment=y")[2]) == ["e"]


def test_cursor_total_is_reused_and_offsets_advance(many: list[str]) -> None:
    _, pages = walk("_count=10")
    offsets = [int(query_of(link(page, "self") or "")["_offset"][0]) for page in pages]
    assert offsets == [0, 10, 20, 30]
    assert link(pages[-1], "next") is None
    assert query_of(link(pages[0], "last") or "")["_offset"] == ["30"]


def test_offset_past_the_end_is_an_empty_page(many: list[str]) -> None:
    status, _, bundle = search("_count=10&_offset=500")
    assert status == 200
    assert bundle["total"] == 37
    assert "entry" not in bundle
    assert link(bundle, "next") is None
    assert link(bundle, "previous") is not None


def test_id_search_pages_by_offset(put: Any) -> None:
    put(*(encounter(f"i{n}", start=f"2022-01-0{n + 1}") for n in range(5)))
    _, _, first = search("_id=i0,i1,i2,i3,i4,missing&_count=2")
    assert ids_of(first) == ["i0", "i1"]
    assert first["total"] == 5
    _, _, second = search(query_of(link(first, "next") or ""))
    assert ids_of(second) == ["i2", "i3"]


def test_total_none_walks_every_match_without_counting(many: list[str], calls: Counter[str]) -> None:
    walked, pages = walk("_count=5&_total=none")
    _, _, whole = search("_count=100")
    assert walked == ids_of(whole)
    assert all("total" not in page for page in pages)
    assert all(link(page, "last") is None for page in pages)
    assert all(query_of(link(page, "self") or "")["_total"] == ["none"] for page in pages)
    assert link(pages[-1], "next") is None
    calls.clear()
    status, _, first = search("_count=5&_total=none")
    assert status == 200
    assert len(ids_of(first)) == 5
    # the page and a share of it from each partition the merge opened, not all 37 rows
    assert calls["query_items"] <= 15


def test_total_none_with_offset_reports_more_only_when_there_is_more(many: list[str]) -> None:
    _, _, near_end = search("_count=5&_offset=35&_total=none")
    assert len(ids_of(near_end)) == 2
    assert link(near_end, "next") is None
    _, _, middle = search("_count=5&_offset=30&_total=none")
    assert link(middle, "next") is not None


@pytest.mark.parametrize("value", ["estimate", "accurate"])
def test_total_estimate_and_accurate_count_every_match(many: list[str], value: str) -> None:
    _, _, bundle = search(f"_count=5&_total={value}")
    assert bundle["total"] == 37


def test_a_cursor_from_a_total_none_walk_does_not_fit_an_accurate_search(many: list[str]) -> None:
    _, _, first = search("_count=5&_total=none")
    params = query_of(link(first, "next") or "")
    del params["_total"]
    status, _, body = search(params)
    assert status == 400
    assert "_cursor" in body["issue"][0]["details"]["text"]


def test_bad_total_value_is_a_400_naming_it(many: list[str]) -> None:
    status, _, body = search("_total=sometimes")
    assert status == 400
    assert "'_total'" in body["issue"][0]["details"]["text"]


def test_appointment_links_stay_out_of_the_subject_index(put: Any, calls: Counter[str]) -> None:
    links = ["Appointment/1", "Appointment/2"]
    put(encounter("m", subject="Patient/solo", start="2022-01-01", appointments=links))
    calls.clear()
    status, _, bundle = search("patient=solo&_total=none")
    assert status == 200
    assert ids_of(bundle) == ["m"]
    assert calls["query_items"] == 1  # the Encounter item only, not its two link items
    status, _, bundle = search("patient=solo")  # counted by Select=COUNT
    assert (status, bundle["total"], ids_of(bundle)) == (200, 1, ["m"])
    assert ids_of(search("patient=solo&appointment=2")[2]) == ["m"]
    assert search("patient=other&appointment=2")[2]["total"] == 0


def test_a_first_page_out_of_counting_time_is_answered_without_a_total(
    many: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(searching, "COUNT_BUDGET_SECONDS", -1.0)  # the deadline has passed already
    status, _, first = search("_count=5")
    assert status == 200
    assert "total" not in first
    assert link(first, "last") is None
    _, _, whole = search("_count=100")  # a page that ends the walk still counts
    assert whole["total"] == 37
    walked, pages = walk("_count=5")
    assert walked == ids_of(whole)
    assert all("total" not in page for page in pages)


def test_the_bucket_directory_is_read_once_per_container_window(many: list[str], calls: Counter[str]) -> None:
    for query in ["", "date=ge2022", "date=lt2023", "_count=3"]:
        assert search(query)[0] == 200
    assert calls["GetItem"] == 1


def test_a_decoded_plus_in_a_date_comes_back_encoded_in_the_links(many: list[str]) -> None:
    _, _, bundle = search({"date": ["ge2022-03-01T10:00 02:00"]})
    assert "date=ge2022-03-01T10:00%2B02:00" in (link(bundle, "self") or "")


# ---- counting by partition (Select=COUNT) and the parallel merge -----------------------------------


@pytest.fixture
def selects(table: Any) -> list[str]:
    """The Select of each Query the table's client sends from now on ("" when none)."""
    seen: list[str] = []

    def before(params: dict[str, Any], **_: Any) -> None:
        seen.append(params.get("Select", ""))

    table.meta.events.register("provide-client-params.dynamodb.Query", before)
    return seen


@pytest.mark.parametrize(
    ("query", "expected_total"),
    [
        ("patient=p2", 13),
        ("patient=p2&_offset=10&_count=5", 13),
        ("patient=p1&_count=0", 24),
        ("patient=p1&_offset=20&_count=10", 24),
        ("subject=p2&_count=3", 13),  # the Patient/p2 and Group/p2 partitions
    ],
)
def test_a_partition_that_decides_is_counted_by_dynamodb_with_the_same_answer(
    many: list[str], selects: list[str], query: str, expected_total: int
) -> None:
    """The same search with a criterion every row meets (none is cancelled) is counted row by
    row, on the resources: both give the same total, page and links."""
    status, _, counted = search(query)
    assert status == 200
    assert "COUNT" in selects
    selects.clear()
    status, _, evaluated = search(f"{query}&status:not=cancelled")
    assert status == 200
    assert "COUNT" not in selects
    assert counted["total"] == evaluated["total"] == expected_total
    assert ids_of(counted) == ids_of(evaluated)
    assert [x["relation"] for x in counted["link"]] == [x["relation"] for x in evaluated["link"]]
    assert walk(query)[0] == walk(f"{query}&status:not=cancelled")[0]


@pytest.mark.parametrize(
    "query", ["patient=p2&status:not=cancelled", "patient=p2&date=ge2021", "appointment=a1,a2"]
)
def test_other_criteria_or_overlapping_partitions_are_counted_row_by_row(
    put: Any, selects: list[str], query: str
) -> None:
    put(
        encounter(
            "both",
            subject="Patient/p2",
            start="2022-01-01",
            appointments=["Appointment/a1", "Appointment/a2"],
        ),
        encounter("one", subject="Patient/p2", start="2022-02-01", appointments=["Appointment/a1"]),
    )
    selects.clear()
    status, _, bundle = search(query)
    assert status == 200
    assert (bundle["total"], ids_of(bundle)) == (2, ["both", "one"])  # "both" once, though in two
    assert "COUNT" not in selects


def test_a_walk_over_many_partitions_keeps_the_documented_order(put: Any) -> None:
    """Periods of every family (short, long, open, start-less, none) over several years: the
    merged streams come back in (start, id) order, start-less and period-less first."""
    resources = [
        encounter("a-none"),
        encounter("b-startless", end="2021-03-01"),
        encounter("c-open", start="2019-05-01"),
        encounter("d-long", start="2019-01-01", end="2022-01-01"),
        encounter("e-short", start="2020-06-01T10:00:00Z", end="2020-06-01T10:30:00Z"),
        encounter("f-day", start="2020-06-01T09:00:00Z", end="2020-06-01T20:00:00Z"),
        encounter("g-month", start="2021-12-20", end="2022-01-25"),
        encounter("h-open", start="2022-03-01"),
    ]
    put(*resources)
    expected = ["a-none", "b-startless", "d-long", "c-open", "f-day", "e-short", "g-month", "h-open"]
    for count in ("2", "3", "10"):
        assert walk(f"_count={count}")[0] == expected
        assert walk(f"_count={count}&_total=none")[0] == expected
    assert walk("date=ge2021-01-15&date=lt2021-01-16&_count=2")[0] == ["b-startless", "d-long", "c-open"]
    assert walk("date=2020-06-01&_count=1")[0] == ["f-day", "e-short"]


@pytest.fixture
def projections(table: Any) -> list[str]:
    """The ProjectionExpression of each rows Query (not counting ones), its names resolved."""
    seen: list[str] = []

    def before(params: dict[str, Any], **_: Any) -> None:
        if params.get("Select") != "COUNT":
            names = params.get("ExpressionAttributeNames", {})
            expression = params.get("ProjectionExpression", "")
            seen.append(", ".join(sorted(names.get(n.strip(), n.strip()) for n in expression.split(","))))

    table.meta.events.register("provide-client-params.dynamodb.Query", before)
    return seen


@pytest.mark.parametrize(
    ("query", "attributes"),
    [
        ("date=ge2022-03-01&date=lt2022-04-01", "period_hi, period_lo, pk, sort_key"),
        ("patient=p2&status:not=cancelled", "pk, sort_key, subject_ref"),
        ("patient=p2&status=finished&date=ge2021", "period_hi, period_lo, pk, sort_key"),  # value index
        ("appointment=a1,a2&date=ge2021", "appointment_refs, period_hi, period_lo, pk, sort_key"),
        ("appointment=a1&patient=p1", "appointment_refs, link_subject_ref, pk, sort_key"),
        ("_total=none", "pk, sort_key"),
    ],
)
def test_a_query_reads_only_the_attributes_its_criteria_match(
    many: list[str], projections: list[str], query: str, attributes: str
) -> None:
    status, _, _ = search(query)
    assert status == 200
    assert projections
    assert set(projections) == {attributes}


@pytest.mark.parametrize(
    "query",
    [
        "date=ge2021",
        "date=lt2022-06-01&date=gt2020",
        "patient=p2&status=finished&date=ge2021",
        "appointment=a1,a2&status=finished",
        "status=finished&_count=7",
    ],
)
def test_projected_rows_give_the_answer_full_rows_give(many: list[str], query: str, table: Any) -> None:
    """The same walk with the projection taken out of each Query (every attribute comes back)."""
    projected = walk(query)[0]

    def unproject(params: dict[str, Any], **_: Any) -> None:
        for name in params.pop("ProjectionExpression", "").split(", "):
            params["ExpressionAttributeNames"].pop(name, None)

    table.meta.events.register_first("provide-client-params.dynamodb.Query", unproject)
    try:
        assert walk(query)[0] == projected
    finally:
        table.meta.events.unregister("provide-client-params.dynamodb.Query", unproject)
    assert projected
