"""The documentation stays true to the tree: every relative link and anchor resolves, every page in
docs/ is reachable from the README, every repository path named in backticks exists, the folder map
names every module, function and test suite, and every template parameter is documented."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from fhir_encounter_tools.template import load_template
from tests.support import ROOT

DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
TEMPLATE = load_template(ROOT / "template.yaml")
LAYER = ROOT / "layers" / "encounter" / "python" / "fhir_encounter"

_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
_FENCE = re.compile(r"^(```|~~~).*?^\1", re.M | re.S)
_CODE = re.compile(r"`([^`\n]+)`")
_TOP_LEVEL = {p.name for p in ROOT.iterdir() if not p.name.startswith(".")} | {".ci"}
_SUBPACKAGES = ("search/", "store/", "devserver/", "ingest/", "samlocal/")
_FILE_SUFFIXES = (".py", ".yaml", ".toml", ".json", ".md", ".java", ".txt", ".ndjson")
# Paths the docs name that a clean clone does not have: made by the commands the docs describe.
_MADE_BY_COMMANDS = (
    "env.json",
    ".aws-sam/",
    ".venv/",
    ".venv-sam/",
    "node_modules/",
    ".dev-issuer-key.pem",
    ".dynamodb",
    "~/.cache/",
    "samconfig.toml",
    "output/fhir",
)


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation but hyphens and underscores
    dropped, each space a hyphen."""
    text = re.sub(r"`|\*\*|\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip()).lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    seen: dict[str, int] = {}
    result = set()
    for line in _FENCE.sub("", markdown).splitlines():
        match = re.match(r"#{1,6} (.+)", line)
        if match:
            slug = github_slug(match.group(1))
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            result.add(slug if count == 0 else f"{slug}-{count}")
    return result


def broken_links(page: Path, markdown: str) -> list[str]:
    """Relative links of ``markdown`` (as if it were ``page``) whose file or anchor is missing."""
    broken = []
    for target in _LINK.findall(_FENCE.sub("", markdown)):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):
            continue  # https:, mailto:: not ours to check here
        path_part, _, anchor = target.partition("#")
        resolved = (page.parent / path_part).resolve() if path_part else page
        if not resolved.exists():
            broken.append(target)
        elif anchor and resolved.suffix == ".md":
            text = markdown if resolved == page else resolved.read_text()
            if anchor not in anchors(text):
                broken.append(target)
    return broken


def named_paths(markdown: str) -> Iterator[str]:
    """Backticked tokens that name a path in this repository."""
    for block in (_FENCE.sub("", markdown),):
        for token in _CODE.findall(block):
            token = token.strip()
            if (
                " " in token
                or "<" in token
                or "{" in token
                or token.startswith(("http", "$"))
                or (token.count(".") == 1 and token.startswith("."))
            ):
                continue
            head = token.split("/", 1)[0]
            if ("/" in token and (head in _TOP_LEVEL or token.startswith(_SUBPACKAGES))) or (
                "/" not in token and token.endswith(_FILE_SUFFIXES)
            ):
                yield token


def missing_paths(markdown: str) -> list[str]:
    missing = []
    for token in named_paths(markdown):
        if token.startswith(_MADE_BY_COMMANDS):
            continue
        if _exists(token):
            continue
        missing.append(token)
    return missing


def _exists(token: str) -> bool:
    if "*" in token:
        return any(ROOT.glob(token))
    if "/" not in token:  # a bare file name: somewhere in the project's own folders
        return any(p for p in ROOT.rglob(token) if not _ignored(p))
    if (ROOT / token).exists():
        return True
    # A sub-package path (search/planning.py) is the layer's or the tools' package.
    tools = ROOT / "tools" / "fhir_encounter_tools"
    return (LAYER / token).exists() or (tools / token).exists()


def _ignored(path: Path) -> bool:
    return any(
        part.startswith(".") or part in {"node_modules", "__pycache__"}
        for part in path.relative_to(ROOT).parts
    )


def folder_map(markdown: str) -> str:
    """The code block under design.md's "The code, by folder"."""
    section = markdown.split("\n## The code, by folder\n", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```\n(.*?)```", section, re.S)
    return match.group(1) if match else ""


def unnamed_parts(code_map: str) -> list[str]:
    """Layer modules, functions and test suites that the folder map does not name."""
    words = set(re.findall(r"[\w./<>-]+", code_map))
    modules = sorted(p.relative_to(LAYER).as_posix() for p in LAYER.rglob("*.py") if p.name != "__init__.py")
    functions = sorted(p.parent.name for p in (ROOT / "functions").glob("*/app.py"))
    suites = sorted(p.name for p in (ROOT / "tests").iterdir() if (p / "__init__.py").exists())
    return (
        [m for m in modules if m not in words]
        + [
            f"functions/{f}"
            for f in functions
            if f"functions/{f}/" not in words and f"functions/{f}/app.py" not in words
        ]
        + [f"tests/{s}" for s in suites if f"tests/{s}" not in words]
    )


# ---- the docs as they are --------------------------------------------------------------------


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_and_anchor_resolves(page: Path) -> None:
    assert broken_links(page, page.read_text()) == []


def test_every_docs_page_is_linked_from_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    linked = {(ROOT / target.partition("#")[0]).resolve() for target in _LINK.findall(readme)}
    assert [p.name for p in DOCS.glob("*.md") if p.resolve() not in linked] == []


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_path_the_docs_name_exists(page: Path) -> None:
    assert missing_paths(page.read_text()) == []


def test_the_folder_map_names_every_module_function_and_test_suite() -> None:
    code_map = folder_map((DOCS / "design.md").read_text())
    assert unnamed_parts(code_map) == []


def test_every_template_parameter_is_documented() -> None:
    documented = (DOCS / "deploying.md").read_text() + (DOCS / "security.md").read_text()
    assert [name for name in TEMPLATE["Parameters"] if f"`{name}`" not in documented] == []


# ---- the checkers catch what they are for ---------------------------------------------------------


def test_a_link_to_a_missing_page_or_anchor_is_caught() -> None:
    page = DOCS / "api.md"
    text = "[a](design.md#paging) [b](nowhere.md) [c](design.md#no-such-heading) [d](#errors) [e](#gone)"
    assert broken_links(page, text + "\n## Errors\n") == ["nowhere.md", "design.md#no-such-heading", "#gone"]


def test_github_slugs_drop_punctuation_and_keep_hyphens() -> None:
    assert github_slug("`make sam-local`: the real Lambda runtime, with Docker") == (
        "make-sam-local-the-real-lambda-runtime-with-docker"
    )
    assert github_slug("Order, paging and limits") == "order-paging-and-limits"
    assert anchors("## Notes\n## Notes\n```\n## not a heading\n```\n") == {"notes", "notes-1"}


def test_a_missing_path_is_caught_and_commands_outputs_are_not() -> None:
    text = (
        "`tools/nothing_here.py` `search/planning.py` `store/missing.py` `env.json` `make run` `ghost.yaml`"
    )
    assert missing_paths(text) == ["tools/nothing_here.py", "store/missing.py", "ghost.yaml"]


def test_a_module_missing_from_the_folder_map_is_caught() -> None:
    code_map = folder_map((DOCS / "design.md").read_text())
    assert unnamed_parts(code_map.replace("access.py", "")) == ["access.py"]
    assert unnamed_parts(code_map.replace("search/paging.py", "paging.py")) == ["search/paging.py"]
    assert unnamed_parts(code_map.replace("functions/authorizer/", "")) == ["functions/authorizer"]
    assert unnamed_parts(code_map.replace("tests/fuzz", "")) == ["tests/fuzz"]
