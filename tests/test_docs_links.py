"""Every relative link in the README and docs/ names a file that exists, and a heading there
when it has an anchor (GitHub's heading ids), so moving a section cannot strand a reader."""

import collections
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
FENCE = re.compile(r"^```.*?^```", re.S | re.M)
LINK = re.compile(r"\]\(([^)\s]+)\)")


def heading_ids(text: str) -> set:
    """The anchors GitHub gives a page's headings: lower case, punctuation dropped, spaces
    to hyphens, a repeated heading numbered -1, -2, ..."""
    seen, ids = collections.Counter(), set()
    for match in re.finditer(r"^#{1,6}\s+(.+?)\s*$", FENCE.sub("", text), re.M):
        slug = re.sub(r"[^\w\- ]", "", match.group(1).lower()).replace(" ", "-")
        ids.add(f"{slug}-{seen[slug]}" if seen[slug] else slug)
        seen[slug] += 1
    return ids


def broken_links(page: Path) -> list:
    broken = []
    for link in LINK.findall(FENCE.sub("", page.read_text())):
        if re.match(r"^[a-z]+:", link):  # https:, mailto: ...
            continue
        path, _, anchor = link.partition("#")
        target = (page.parent / path) if path else page
        if not target.exists():
            broken.append(f"{link}: no such file")
        elif anchor and target.suffix == ".md" and anchor not in heading_ids(target.read_text()):
            broken.append(f"{link}: no such heading")
    return broken


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_every_relative_link_resolves(page):
    assert broken_links(page) == []


def test_a_missing_page_or_heading_is_found(tmp_path):
    (tmp_path / "b.md").write_text("# Turned sources: the far half\n\n## Notes\n## Notes\n")
    page = tmp_path / "a.md"
    page.write_text(
        "[ok](b.md#turned-sources-the-far-half) [dup](b.md#notes-1) [gone](c.md) [typo](b.md#turned)\n"
        "```\n[in a fence](d.md)\n```\n[web](https://example.org)\n"
    )
    assert broken_links(page) == ["c.md: no such file", "b.md#turned: no such heading"]
