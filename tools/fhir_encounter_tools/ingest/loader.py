"""Loads Encounters from FHIR .json (a resource or a Bundle) and .ndjson files, streaming, through
``EncounterWriter``. One bad record is reported with its place and reason and never costs the
records around it. Records are read and validated in order on the calling thread (so the first of
an id wins, and rejections come in input order); batches of them are written by LOAD_WORKERS
threads, at most two batches per thread in flight, so memory holds those and the ids seen.
docs/running-locally.md ("Loading your own Encounters") says what each input does."""

from __future__ import annotations

import errno
import json
import re
import stat
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from fhir_encounter.references import is_fhir_id
from fhir_encounter.store.dynamodb import BATCH_GET_LIMIT, LOAD_WORKERS
from fhir_encounter.store.writer import EncounterWriter, WriteResult
from fhir_encounter_tools.ingest.validation import (
    MAX_DEPTH,
    NESTED_TOO_DEEPLY,
    ambiguity,
    element_path,
    encounter_problem,
    parse_json,
)

SUFFIXES = (".json", ".ndjson")
BATCH_SIZE = BATCH_GET_LIMIT  # one BatchGetItem checks what the batch already holds
_REDRAW_SECONDS = 0.1
_RESOURCE_TYPE = re.compile(r"[A-Z][A-Za-z]{0,63}")
_UUID_URN = re.compile(
    r"urn:uuid:([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})"
)
_UUID_PREFIX = "urn:uuid:"


class SourceError(RuntimeError):
    """A PATH that cannot be loaded (missing, or not a .json or .ndjson file); the message names it."""


@dataclass(frozen=True, slots=True)
class Rejection:
    where: str  # "data/a.ndjson:12", "data/b.json: entry[3]" or "data/c.json"
    reason: str
    encounter_id: str | None = None

    def __str__(self) -> str:
        resource = f" (Encounter/{self.encounter_id})" if self.encounter_id else ""
        return f"{self.where}{resource}: {self.reason}"


@dataclass(slots=True)
class LoadReport:
    written: int = 0
    reindexed: int = 0
    unchanged: int = 0
    rejected: int = 0
    skipped: int = 0
    unreadable: int = 0  # files
    seconds: float = 0.0

    @property
    def loaded(self) -> int:
        return self.written + self.reindexed + self.unchanged

    @property
    def per_second(self) -> float:
        return self.loaded / self.seconds if self.seconds > 0 else 0.0

    @property
    def failed(self) -> bool:
        return self.rejected > 0 or self.unreadable > 0

    def summary(self) -> str:
        unreadable = f", unreadable files {self.unreadable}" if self.unreadable else ""
        reindexed = f", reindexed {self.reindexed}" if self.reindexed else ""
        return (
            f"loaded {self.loaded} (written {self.written}{reindexed}, unchanged {self.unchanged}), "
            f"rejected {self.rejected}, skipped {self.skipped}{unreadable} "
            f"in {self.seconds:.2f} s ({self.per_second:.0f} Encounters/s)"
        )


@dataclass(frozen=True, slots=True)
class _Record:
    """One thing read from a source: a resource to check, a reason it is unreadable, or a skip."""

    where: str
    resource: Any = None
    problem: str | None = None
    skipped: bool = False
    unreadable: str | None = None  # why the file at ``where`` (the rest of it) cannot be read
    size: int = 0  # input bytes (or resources) it accounts for, for the progress bar


RejectionHandler = Callable[[Rejection], None]


def source_files(paths: Iterable[Path]) -> list[Path]:
    """The files that PATHs name, directories expanded; SourceError for a PATH that cannot be loaded.

    A symbolic link met inside a directory, with a .json or .ndjson name, that leads to no file (it
    loops, or its target is missing) is listed too, so that reading it reports why."""
    files: list[Path] = []
    for path in paths:
        try:
            mode = path.stat().st_mode
        except OSError as error:
            raise SourceError(f"{path}: {_os_reason(error)}") from None
        if stat.S_ISDIR(mode):
            found = sorted(p for p in path.rglob("*") if p.suffix.lower() in SUFFIXES and _loadable(p))
            if not found:
                raise SourceError(f"{path}: no .json or .ndjson files in this directory")
            files.extend(found)
        elif stat.S_ISREG(mode):
            if path.suffix.lower() not in SUFFIXES:
                raise SourceError(f"{path}: not a .json or .ndjson file")
            files.append(path)
        else:
            raise SourceError(f"{path}: not a regular file or directory")
    return files


def _loadable(path: Path) -> bool:
    """A regular file, or a symbolic link that leads nowhere (reading it says why)."""
    try:
        return stat.S_ISREG(path.stat().st_mode)
    except OSError:
        return path.is_symlink()


def _os_reason(error: OSError) -> str:
    if error.errno == errno.ELOOP:
        return "symlink loop"
    if error.errno in (errno.ENOENT, errno.ENOTDIR):
        return "no such file or directory"
    return f"cannot read ({error.strerror or type(error).__name__})"


def load_paths(
    paths: Sequence[Path],
    writer: EncounterWriter,
    *,
    on_reject: RejectionHandler | None = None,
    progress: TextIO | None = None,
    report: LoadReport | None = None,
) -> LoadReport:
    """Load every Encounter in PATHs; ``progress`` gets a progress bar when it is a terminal.

    ``report`` (a new one by default) is kept up to date as the load goes, so that it still tells
    what was written when writing fails midway.
    """
    files = source_files(paths)
    total = sum(_size(path) for path in files)
    records = (record for path in files for record in _file_records(path))
    return _load(records, writer, on_reject, ProgressBar(progress, total), report or LoadReport())


def load_resources(
    resources: Iterable[Any],
    writer: EncounterWriter,
    *,
    source: str,
    total: int = 0,
    on_reject: RejectionHandler | None = None,
    progress: TextIO | None = None,
    report: LoadReport | None = None,
) -> LoadReport:
    """Load Encounters given as parsed JSON (the n-th is reported as ``<source> #n``); ``report``
    as in ``load_paths``."""
    records = (_Record(f"{source} #{n}", resource, size=1) for n, resource in enumerate(resources, 1))
    return _load(records, writer, on_reject, ProgressBar(progress, total), report or LoadReport())


def _load(
    records: Iterable[_Record],
    writer: EncounterWriter,
    on_reject: RejectionHandler | None,
    bar: ProgressBar,
    report: LoadReport,
) -> LoadReport:
    started = time.perf_counter()
    first_seen: dict[str, str] = {}  # id -> place of the Encounter with that id that this load writes
    batch: list[dict[str, Any]] = []
    pool = ThreadPoolExecutor(max_workers=LOAD_WORKERS, thread_name_prefix="load")
    in_flight: set[Future[WriteResult]] = set()

    def count(done: Iterable[Future[WriteResult]]) -> None:
        for future in done:
            in_flight.discard(future)
            result = future.result()  # a batch that failed stops the load with its error
            report.written += result.written
            report.reindexed += result.reindexed
            report.unchanged += result.unchanged

    def flush() -> None:
        if batch:
            in_flight.add(pool.submit(writer.write, batch.copy()))
            batch.clear()
        count([future for future in in_flight if future.done()])
        if len(in_flight) >= 2 * LOAD_WORKERS:
            count(wait(in_flight, return_when=FIRST_COMPLETED).done)

    def reject(where: str, problem: str, resource: Any) -> None:
        if on_reject:
            bar.clear()
            on_reject(Rejection(where, problem, _id_of(resource)))

    try:
        for record in records:
            if record.skipped:
                report.skipped += 1
            elif record.unreadable:
                report.unreadable += 1
                reject(record.where, record.unreadable, None)
            elif problem := record.problem or encounter_problem(record.resource):
                report.rejected += 1
                reject(record.where, problem, record.resource)
            elif (first := first_seen.get(record.resource["id"])) is not None:
                report.rejected += 1
                reject(record.where, f"duplicate id: first seen at {first}", record.resource)
            else:
                first_seen[record.resource["id"]] = record.where
                batch.append(record.resource)
                if len(batch) >= BATCH_SIZE:
                    flush()
            report.seconds = time.perf_counter() - started
            bar.advance(record.size, report)
        flush()
        count(wait(in_flight).done)
    finally:
        # Stopped early (a failed batch, an interrupt): batches not started are dropped, and the
        # ones being written finish and are counted, so that the report says what was written.
        pool.shutdown(wait=True, cancel_futures=True)
        for future in list(in_flight):
            if not future.cancelled() and future.exception() is None:
                count([future])
        bar.clear()
        report.seconds = time.perf_counter() - started
    return report


def _id_of(resource: Any) -> str | None:
    """The id to name in a rejection: a valid one, and not one of two (``"id"`` twice)."""
    value = resource.get("id") if isinstance(resource, dict) and not ambiguity(resource, ("id",)) else None
    return value if isinstance(value, str) and is_fhir_id(value) else None


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:  # reported when the file is read
        return 0


def _file_records(path: Path) -> Iterator[_Record]:
    """The file's records; then, when reading it fails, one record that says so (not an exception:
    the records read before it and the other files still load)."""
    try:
        if path.suffix.lower() == ".ndjson":
            yield from _ndjson_records(path)
        else:
            yield from _json_records(path)
    except OSError as error:
        reason = "symlink loop" if error.errno == errno.ELOOP else error.strerror or type(error).__name__
        yield _Record(str(path), unreadable=f"cannot read ({reason})")


def _ndjson_records(path: Path) -> Iterator[_Record]:
    with path.open("rb") as handle:
        pending = 0  # bytes of blank lines, counted with the next record
        for number, raw in enumerate(handle, 1):
            pending += len(raw)
            try:
                text = raw.decode("utf-8-sig").strip()
            except UnicodeDecodeError:
                yield _Record(f"{path}:{number}", problem="not UTF-8 text", size=pending)
                pending = 0
                continue
            if text:
                record = _parsed(f"{path}:{number}", text, pending)
                yield (
                    _Record(record.where, skipped=True, size=pending)
                    if _other_resource(record.resource)
                    else record
                )
                pending = 0


def _json_records(path: Path) -> Iterator[_Record]:
    data = path.read_bytes()
    try:
        record = _parsed(str(path), data.decode("utf-8-sig"), len(data))
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        record = _Record(f"{path}:{line}", problem="not UTF-8 text", size=len(data))
    document = record.resource
    if problem := ambiguity(document, ("resourceType",)):
        yield _Record(record.where, problem=problem, size=record.size)
    elif isinstance(document, dict) and document.get("resourceType") == "Bundle":
        yield from _bundle_records(path, document, record.size)
    elif _other_resource(document):
        yield _Record(record.where, skipped=True, size=record.size)
    else:
        yield record


def _parsed(where: str, text: str, size: int) -> _Record:
    try:
        return _Record(where, parse_json(text), size=size)
    except json.JSONDecodeError as error:
        if error.lineno > 1:  # a .json document: say which of its lines
            where = f"{where}:{error.lineno}"
        return _Record(where, problem=f"invalid JSON: {error.msg} at column {error.colno}", size=size)
    except RecursionError:
        return _Record(where, problem=f"invalid JSON: {NESTED_TOO_DEEPLY}", size=size)


def _bundle_records(path: Path, bundle: dict[str, Any], size: int) -> Iterator[_Record]:
    entries = bundle.get("entry", [])
    if problem := ambiguity(bundle, ("entry",)):
        yield _Record(str(path), problem=problem, size=size)
        return
    if not isinstance(entries, list):
        yield _Record(str(path), problem="entry: must be a JSON array", size=size)
        return
    targets = _uuid_targets(entries)
    for index, entry in enumerate(entries):
        where, share = f"{path}: entry[{index}]", size if index == 0 else 0
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(entry, dict):
            yield _Record(where, problem="must be a JSON object", size=share)
        elif problem := ambiguity(entry, ("resource", "fullUrl")):
            yield _Record(where, problem=problem, size=share)
        elif resource is None or _other_resource(resource):
            yield _Record(where, skipped=True, size=share)
        else:
            yield _Record(where, resource, problem=_resolve_uuids(resource, targets), size=share)


def _uuid_targets(entries: list[Any]) -> dict[str, str | None]:
    """``urn:uuid:X`` -> ``Type/id`` for each entry whose fullUrl is one; an entry's resource that
    has no id takes X as its id. None for a fullUrl that names no resource with a valid type and
    id, or that two entries share (a reference to it is ambiguous)."""
    targets: dict[str, str | None] = {}
    for entry in entries:
        full_url = entry.get("fullUrl") if isinstance(entry, dict) else None
        if not isinstance(full_url, str) or ambiguity(entry, ("resource", "fullUrl")):
            continue
        match = _UUID_URN.fullmatch(full_url)
        if match is None:
            continue
        resource = entry.get("resource")
        target = None
        if isinstance(resource, dict) and not ambiguity(resource, ("resourceType", "id")):
            resource.setdefault("id", match[1])
            kind, resource_id = resource.get("resourceType"), resource["id"]
            if isinstance(kind, str) and _RESOURCE_TYPE.fullmatch(kind) and isinstance(resource_id, str):
                target = f"{kind}/{resource_id}" if is_fhir_id(resource_id) else None
        targets[full_url] = None if full_url in targets else target
    return targets


def _resolve_uuids(resource: dict[str, Any], targets: dict[str, str | None]) -> str | None:
    """Replaces each ``urn:uuid:`` reference of ``resource`` by the ``Type/id`` of the entry it names;
    the problem of the first one that no entry resolves (its place, never its value), or None."""
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(resource, ())]
    while stack:
        item, path = stack.pop()
        if len(path) >= MAX_DEPTH:  # deeper is rejected by validation anyway
            continue
        if isinstance(item, dict):
            reference = item.get("reference")
            if isinstance(reference, str) and reference.startswith(_UUID_PREFIX):
                target = targets.get(reference)
                if target is None:
                    return (
                        f"{element_path((*path, 'reference'))}: a urn:uuid reference that no entry of "
                        "the Bundle resolves (none has it as its fullUrl, with a resource type and id)"
                    )
                item["reference"] = target
            stack.extend(
                (child, (*path, key)) for key, child in item.items() if isinstance(child, dict | list)
            )
        elif isinstance(item, list):
            stack.extend(
                (child, (*path, n)) for n, child in enumerate(item) if isinstance(child, dict | list)
            )
    return None


def _other_resource(resource: Any) -> bool:
    """A resource of another type than Encounter (a Bundle, a .json file or a Bulk Data export has
    them); not one whose type is ambiguous (validation rejects it)."""
    kind = resource.get("resourceType") if isinstance(resource, dict) else None
    return (
        isinstance(kind, str)
        and kind != "Encounter"
        and _RESOURCE_TYPE.fullmatch(kind) is not None
        and ambiguity(resource, ("resourceType",)) is None
    )


class ProgressBar:
    """A one-line progress bar, drawn only when ``stream`` is a terminal."""

    WIDTH = 24

    def __init__(self, stream: TextIO | None, total: int) -> None:
        self._stream = stream if stream is not None and stream.isatty() else None
        self._total = total
        self._done = 0
        self._drawn_at = 0.0

    def advance(self, amount: int, report: LoadReport) -> None:
        self._done += amount
        now = time.monotonic()
        if self._stream is None or now - self._drawn_at < _REDRAW_SECONDS:
            return
        self._drawn_at = now
        share = min(self._done / self._total, 1.0) if self._total else 0.0
        filled = round(share * self.WIDTH)
        self._stream.write(
            f"\r[{'#' * filled}{'.' * (self.WIDTH - filled)}] {share:4.0%}  loaded {report.loaded}"
            f"  rejected {report.rejected}  skipped {report.skipped}  {report.per_second:.0f}/s\x1b[K"
        )
        self._stream.flush()

    def clear(self) -> None:
        if self._stream is not None and self._drawn_at:
            self._stream.write("\r\x1b[K")
            self._stream.flush()
            self._drawn_at = 0.0
