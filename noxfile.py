#!/usr/bin/env -S uv run --script
# /// script
# dependencies = ["nox>=2024.3"]
# ///
"""Task runner: `nox -s tests`, `nox -s lint`, `nox -s docs`, `nox -s notebook`.

Each session installs the package into its own virtual environment, so it tests what a
user installs; `make test` / `make run` stay the two-command path for a newcomer.
"""

import nox

nox.needs_version = ">=2024.3"
nox.options.default_venv_backend = "uv|virtualenv"


@nox.session
def lint(session: nox.Session) -> None:
    """ruff (with bugbear) and mypy on the package."""
    session.install("-e", ".[dev]")
    session.run("ruff", "check", "qfdjax", "tests", "benchmarks", "experiments")
    session.run("mypy")


@nox.session
def tests(session: nox.Session) -> None:
    """The README's test command (slow and GPU tests skipped unless asked for)."""
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs)


@nox.session(default=False)
def docs(session: nox.Session) -> None:
    """Build the documentation with warnings as errors (`nox -s docs -- serve` to preview)."""
    session.install("-e", ".[docs]")
    if session.posargs == ["serve"]:
        session.run("mkdocs", "serve")
    else:
        session.run("mkdocs", "build", "--strict", "--site-dir", "site")


@nox.session(default=False)
def notebook(session: nox.Session) -> None:
    """Execute the tutorial notebook top to bottom."""
    session.install("-e", ".[test]")
    session.run("pytest", "-n", "0", "tests/test_docs.py", "-k", "notebook")


if __name__ == "__main__":
    nox.main()
