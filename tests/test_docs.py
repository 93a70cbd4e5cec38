"""The documentation holds together: README.md is a short entry (the two commands first, at most
150 lines), every page in docs/ is reachable from it, every screenshot is shown somewhere, and every
relative link in README.md and docs/*.md resolves to a file and, where it names one, a heading."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# Pages other branches of this round add; linked already. At merge each must exist, and then leave
# this set (the last test fails while a pending page exists, so the set cannot go stale).
PENDING: set[str] = set()

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^(```|~~~)")


def prose(text: str) -> str:
    """The text outside fenced code blocks and inline code, where links are links."""
    lines, inside = [], False
    for line in text.splitlines():
        if FENCE.match(line.strip()):
            inside = not inside
            continue
        if not inside:
            lines.append(re.sub(r"`[^`]*`", "", line))
    return "\n".join(lines)


def anchors(text: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, -1, -2 for repeats."""
    seen: dict[str, int] = {}
    out = set()
    for line in _headings(text):
        slug = re.sub(r"[^\w\- ]", "", line.lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        out.add(slug if count == 0 else f"{slug}-{count}")
    return out


def _headings(text: str):
    inside = False
    for line in text.splitlines():
        if FENCE.match(line.strip()):
            inside = not inside
        elif not inside and (match := re.match(r"#{1,6} (.*)", line)):
            yield match.group(1).strip().replace("`", "")


def links(page: Path):
    for target in LINK.findall(prose(page.read_text())):
        if not re.match(r"[a-z]+:", target):  # http:, https:, mailto: are not checked here
            yield target


def test_anchor_rule():
    assert anchors("# Keys, audit and the model's lifecycle\n## Metrics (`GET /metrics`)\n## A\n## A\n") == {
        "keys-audit-and-the-models-lifecycle", "metrics-get-metrics", "a", "a-1"}


def test_readme_is_a_short_entry():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 150
    first_block = text.split("```")[1]
    assert "make run" in first_block and "make test" in first_block


def test_every_page_is_linked_from_the_readme():
    linked = {(ROOT / target.split("#")[0]).resolve() for target in links(ROOT / "README.md")}
    assert [p.name for p in PAGES[1:] if p.resolve() not in linked] == []


def test_every_screenshot_is_shown():
    shown = {(page.parent / target).resolve() for page in PAGES for target in links(page)}
    assert [p.name for p in (ROOT / "docs" / "screenshots").glob("*.png") if p.resolve() not in shown] == []


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page):
    problems = []
    for target in links(page):
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page.resolve()
        name = file.relative_to(ROOT).as_posix() if file.is_relative_to(ROOT) else str(file)
        if not file.exists():
            if name not in PENDING:
                problems.append(f"{target}: no such file")
            continue
        if anchor and file.suffix == ".md" and anchor not in anchors(file.read_text()):
            problems.append(f"{target}: no heading #{anchor} in {name}")
    assert problems == []


def test_pending_pages_are_still_pending():
    """Once a pending page exists, its links are checked like any other: take it out of PENDING."""
    assert [name for name in sorted(PENDING) if (ROOT / name).exists()] == []
