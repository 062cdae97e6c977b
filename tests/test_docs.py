"""The README and docs/ point at files and sections that exist: a reader following a link lands somewhere."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_LINK = re.compile(r"\]\(([^)\s]+)\)")
_FENCED = re.compile(r"^```.*?^```", re.S | re.M)


def _anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    headings = re.findall(r"^#+ +(.+?) *$", _FENCED.sub("", page.read_text()), re.M)
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


def _links(page: Path) -> list[str]:
    text = _FENCED.sub("", page.read_text())
    return [link for link in _LINK.findall(text) if not re.match(r"[a-z]+:", link)]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_lands_on_a_file_and_section(page):
    broken = []
    for link in _links(page):
        path, _, anchor = link.partition("#")
        target = (page.parent / path).resolve() if path else page
        if not target.exists():
            broken.append(link)
        elif anchor and target.suffix == ".md" and anchor not in _anchors(target):
            broken.append(link)
    assert not broken, f"{page.name}: {broken}"


def test_the_check_finds_a_broken_link(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Top\n[ok](#top) [gone](missing.md) [bad anchor](#nowhere) [web](https://x.org)\n"
                    "```\n[in a code block](skipped.md)\n```\n")
    assert _links(page) == ["#top", "missing.md", "#nowhere"]
    assert _anchors(page) == {"top"}


def _cli_sections() -> dict[str, str]:
    text = (ROOT / "docs" / "cli.md").read_text()  # usage lines are in code blocks
    parts = re.split(r"^## +(\S+).*$", text, flags=re.M)
    return {name: body for name, body in zip(parts[1::2], parts[2::2])}


def test_every_command_and_option_is_in_cli_md():
    import click

    from tanglec.cli import cli

    sections = _cli_sections()
    missing = []
    for name, command in cli.commands.items():
        if name == "completion":
            section = sections.get("Shell", "")
        else:
            section = sections.get(name)
        if section is None:
            missing.append(name)
            continue
        for param in command.params:
            # --json is every command's (the Conventions section); -o or --output, either spelling will do
            if isinstance(param, click.Option) and not param.hidden and not {"--help", "--json"} & set(param.opts):
                if not any(re.search(re.escape(opt) + r"\b", section) for opt in param.opts):
                    missing.append(f"{name} {max(param.opts, key=len)}")
    assert not missing, f"not in docs/cli.md: {missing}"
