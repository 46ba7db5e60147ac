"""MkDocs hook: pages that are generated from the code, so they cannot drift from it.

`<!-- cli-reference -->` becomes the `--help` of every qfdjax command, read from the
argparse parser the CLI itself uses; `<!-- readme: TITLE -->` becomes the README's
section of that title (its real outputs), so the docs and the README say one thing.
"""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

MARKER = "<!-- cli-reference -->"
README_SECTION = re.compile(r"<!-- readme: (.+?) -->")
IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)]+)\)")
README = Path(__file__).resolve().parent.parent / "README.md"


def _help(parser: argparse.ArgumentParser) -> str:
    # A fixed width: the page must not depend on the terminal that built it.
    os.environ["COLUMNS"] = "100"
    return parser.format_help()


def cli_reference() -> str:
    from qfdjax.cli import build_parser

    parser = build_parser()
    parts = ["## qfdjax", "", "```text", _help(parser).rstrip(), "```", ""]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                parts += [f"## qfdjax {name}", "", "```text", _help(sub).rstrip(), "```", ""]
    return "\n".join(parts)


def readme_section(title: str) -> str:
    """The body of the README's `## TITLE` section (its subsections included), headings moved down one level."""
    lines = README.read_text().splitlines()
    try:
        start = lines.index(f"## {title}") + 1
    except ValueError:
        raise ValueError(f"README.md has no section '## {title}'") from None
    end = next((k for k in range(start, len(lines)) if lines[k].startswith("## ")), len(lines))
    body = "\n".join(("#" + line) if line.startswith("### ") else line for line in lines[start:end]).strip()
    # The README's figures live in the repository, not in the site: named, not linked.
    return IMAGE.sub(lambda m: f"*Figure: {m.group(1)} (`{m.group(2)}` in the repository).*", body)


def on_page_markdown(markdown: str, page, config, files) -> str:
    if MARKER in markdown:
        markdown = markdown.replace(MARKER, cli_reference())
    return README_SECTION.sub(lambda m: readme_section(m.group(1)), markdown)
