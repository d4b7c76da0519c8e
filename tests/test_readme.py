"""The README and the documentation stay true: the zoo table is the registry's, and every relative
link points to a file that exists."""

import re
from pathlib import Path

import pytest

from effvid.deploy.model_table import model_table
from effvid.tables import render_table

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCUMENTS = [README, *sorted((ROOT / "docs").rglob("*.md"))]

ZOO = re.compile(r"<!-- zoo:start -->\n(.*?)<!-- zoo:end -->", re.DOTALL)
FENCE = re.compile(r"^```.*?^```", re.DOTALL | re.MULTILINE)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
EXTERNAL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")  # http:, https:, mailto:, ...


def _name(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_readme_zoo_table_is_the_registry():
    tables = ZOO.findall(README.read_text())
    assert len(tables) == 1, (
        "README.md needs one table between <!-- zoo:start --> and <!-- zoo:end -->"
    )
    expected = render_table(model_table(), "markdown")
    assert tables[0].strip() == expected.strip(), (
        "the README's zoo table differs from the registry: paste `effvid models --format markdown`"
    )


@pytest.mark.parametrize("document", DOCUMENTS, ids=_name)
def test_every_zoo_table_is_the_registry(document):
    expected = render_table(model_table(), "markdown").strip()
    for table in ZOO.findall(document.read_text()):
        assert table.strip() == expected, f"{_name(document)}: stale zoo table"


def _relative_links(text: str) -> list[str]:
    prose = INLINE_CODE.sub("", FENCE.sub("", text))
    return [target for target in LINK.findall(prose) if not EXTERNAL.match(target)]


@pytest.mark.parametrize("document", DOCUMENTS, ids=_name)
def test_relative_links_point_to_files(document):
    missing = []
    for target in _relative_links(document.read_text()):
        path = target.split("#", 1)[0]
        if not path:  # an anchor in the same page
            continue
        if not (document.parent / path).exists():
            missing.append(target)
    assert not missing, f"{_name(document)} links to files that do not exist: {missing}"


def test_link_finder_sees_links_and_skips_code():
    text = "see [a](docs/a.md#x) and ![p](pic.png) and [w](https://x.org)\n`[c](no.md)`\n```\n[d](no.md)\n```\n"
    assert _relative_links(text) == ["docs/a.md#x", "pic.png"]
