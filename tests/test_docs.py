"""The documentation builds without warnings and the tutorial notebook runs top to bottom."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_docs_build_strict(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    cli = (tmp_path / "site" / "cli" / "index.html").read_text()
    # The CLI page is generated from the parser: every command's options are on it.
    for option in ("--beta", "--coverage", "--fc-points", "--lower"):
        assert option in cli, option
    api = (tmp_path / "site" / "api" / "index.html").read_text()
    assert "qfdjax.fit" in api and "Parameters" in api


def test_tutorial_notebook_runs(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    notebook = nbformat.read(ROOT / "docs" / "tutorial.ipynb", as_version=4)
    # The kernel draws inline (ipykernel's own backend): no display is needed.
    # Run from a folder that is not the repository's: the notebook must need nothing beside it.
    client = nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join(o.get("text", "") for o in outputs)
    assert "Path C" in text
    html = "".join(o.get("data", {}).get("text/html", "") for o in outputs)
    assert "mu.U" in html  # the fit's table
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 2  # the contour figure and the scan's profiles
