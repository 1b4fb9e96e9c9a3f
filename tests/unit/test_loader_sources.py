"""The loader without a table: which files PATHs name, the SourceError for one that cannot be
loaded, and the summary line of a load."""

from __future__ import annotations

from pathlib import Path

import pytest

from fhir_encounter_tools.ingest import loader
from fhir_encounter_tools.ingest.loader import SourceError


def test_a_directory_is_walked_recursively_in_order_and_other_files_are_ignored(tmp_path: Path) -> None:
    for name in ("b/2.ndjson", "b/1.JSON", "a.json", "b/c/0.ndjson", "notes.txt", "b/data.csv"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    assert loader.source_files([tmp_path]) == [
        tmp_path / "a.json",
        tmp_path / "b/1.JSON",
        tmp_path / "b/2.ndjson",
        tmp_path / "b/c/0.ndjson",
    ]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("missing.ndjson", "missing.ndjson: no such file or directory"),
        ("notes.txt", "notes.txt: not a .json or .ndjson file"),
        ("empty-dir", "empty-dir: no .json or .ndjson files in this directory"),
    ],
)
def test_a_path_that_cannot_be_loaded_is_a_source_error(tmp_path: Path, name: str, message: str) -> None:
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "empty-dir").mkdir()
    with pytest.raises(SourceError) as raised:
        loader.source_files([tmp_path / name])
    assert str(raised.value) == f"{tmp_path}/{message}"


@pytest.mark.parametrize("name", ["loop.ndjson", "loop", "loop/inside.json"])
def test_a_symlink_loop_given_as_a_path_is_a_source_error_that_says_so(tmp_path: Path, name: str) -> None:
    (tmp_path / "loop.ndjson").symlink_to(tmp_path / "loop.ndjson")
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    with pytest.raises(SourceError) as raised:
        loader.source_files([tmp_path / name])
    assert str(raised.value) == f"{tmp_path}/{name}: symlink loop"


def test_a_dangling_symlink_given_as_a_path_is_no_such_file(tmp_path: Path) -> None:
    (tmp_path / "gone.ndjson").symlink_to(tmp_path / "missing.ndjson")
    with pytest.raises(SourceError) as raised:
        loader.source_files([tmp_path / "gone.ndjson"])
    assert str(raised.value) == f"{tmp_path}/gone.ndjson: no such file or directory"


def test_links_in_a_directory_that_lead_to_no_file_are_listed_and_links_to_directories_are_not(
    tmp_path: Path,
) -> None:
    (tmp_path / "a.json").write_text("")
    (tmp_path / "loop.ndjson").symlink_to(tmp_path / "loop.ndjson")
    (tmp_path / "gone.json").symlink_to(tmp_path / "missing.json")
    (tmp_path / "linked.json").symlink_to(tmp_path / "a.json")
    (tmp_path / "sub").mkdir()
    (tmp_path / "dir.json").symlink_to(tmp_path / "sub")
    (tmp_path / "loop.txt").symlink_to(tmp_path / "loop.txt")
    assert loader.source_files([tmp_path]) == [
        tmp_path / "a.json",
        tmp_path / "gone.json",
        tmp_path / "linked.json",
        tmp_path / "loop.ndjson",
    ]


def test_the_summary_line_has_every_count_seconds_and_rate() -> None:
    report = loader.LoadReport(written=30, unchanged=4, rejected=8, skipped=1, seconds=2.0)
    assert report.summary() == (
        "loaded 34 (written 30, unchanged 4), rejected 8, skipped 1 in 2.00 s (17 Encounters/s)"
    )


def test_the_summary_line_counts_unreadable_files_when_there_are_some() -> None:
    report = loader.LoadReport(written=2, unreadable=3, seconds=1.0)
    assert report.summary() == (
        "loaded 2 (written 2, unchanged 0), rejected 0, skipped 0, unreadable files 3 "
        "in 1.00 s (2 Encounters/s)"
    )


def test_the_summary_line_counts_reindexed_encounters_when_there_are_some() -> None:
    report = loader.LoadReport(written=1, reindexed=3, unchanged=4, seconds=1.0)
    assert report.loaded == 8
    assert report.summary() == (
        "loaded 8 (written 1, reindexed 3, unchanged 4), rejected 0, skipped 0 in 1.00 s (8 Encounters/s)"
    )
