"""The documentation holds together: a short README, links that resolve, no citations of
documents the repository does not have, no project-tracking text."""

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
README = ROOT / "README.md"
README_MAX_LINES = 250

# [text](target) and ![alt](target); the target ends at whitespace or ')'.
MD_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
# A bare relative path with an anchor, e.g. docs/design.md#accumulator-bounds.
PATH_ANCHOR = re.compile(r"(?<![\w/.:-])((?:\.{1,2}/)?[\w.-]+(?:/[\w.-]+)*\.md)#[\w-]+")
TRACKING = re.compile(r"\bissue\s*#?\d+", re.IGNORECASE)


def markdown_files() -> list[Path]:
    return [README, *sorted((ROOT / "docs").rglob("*.md"))]


def strip_code(text: str) -> str:
    """The text without fenced code blocks and inline code spans (they show commands, not links)."""
    text = re.sub(r"^(```|~~~).*?^\1[^\n]*$", "", text, flags=re.M | re.S)
    return re.sub(r"`[^`\n]*`", "", text)


def relative_links(text: str) -> list[str]:
    """Every link target in the text that names a file of the repository (no URL, no
    same-file anchor), without its anchor."""
    text = strip_code(text)
    targets = MD_LINK.findall(text) + PATH_ANCHOR.findall(MD_LINK.sub("", text))
    out = []
    for t in targets:
        if re.match(r"^[a-z][a-z0-9+.-]*:", t, re.I) or t.startswith("#"):
            continue  # http:, https:, mailto:, ...; an anchor in the same file
        out.append(t.split("#", 1)[0])
    return out


def test_readme_is_short():
    n = len(README.read_text(encoding="utf-8").splitlines())
    assert n <= README_MAX_LINES, f"README.md has {n} lines; at most {README_MAX_LINES} (move detail to docs/)"


@pytest.mark.parametrize("doc", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(doc):
    broken = [t for t in relative_links(doc.read_text(encoding="utf-8"))
              if not (doc.parent / t).exists()]
    assert not broken, f"{doc.relative_to(ROOT)} links to missing files: {broken}"


def test_link_finder_sees_links():
    text = ("See [design](docs/design.md#accumulator-bounds), ![plot](docs/a.png), "
            "docs/reference.md#report-json, [web](https://example.org), [here](#top), `x.md#y`.\n"
            "```\n[not](a/link.md)\n```\n")
    assert relative_links(text) == ["docs/design.md", "docs/a.png", "docs/reference.md"]


def tracked_files() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [ROOT / p for p in out.decode().split("\0") if p]


def test_no_citation_of_missing_design_notes():
    """DESIGN.md is not part of the repository: code and docs cite docs/ instead."""
    me = Path(__file__).resolve()
    citing = [str(p.relative_to(ROOT)) for p in tracked_files()
              if p.is_file() and p.resolve() != me and b"DESIGN.md" in p.read_bytes()]
    assert not citing, f"files citing DESIGN.md, which the repository does not have: {citing}"


@pytest.mark.parametrize("doc", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_tracking_text(doc):
    hits = TRACKING.findall(doc.read_text(encoding="utf-8"))
    assert not hits, f"{doc.relative_to(ROOT)} has project-tracking text: {hits}"
