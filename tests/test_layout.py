"""The package's layers: imports only run downward, and the folders say where the layers are."""

import ast
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1] / "qfdjax"
# Foundations (no qfdjax imports) < model < reference/fitting < scans < commands.
# stats/ sits beside scans and may import it; scans must never import stats.
RANK = {"errors": 0, "io": 0, "integrity": 0, "runtime": 0, "model": 1, "reference": 2, "fitting": 2, "scans": 3, "stats": 3.5, "bayes": 3.5}
COMMANDS = 4


def _layer(module: str) -> int:
    top = module.split(".")[1] if module.count(".") else ""
    return RANK.get(top, COMMANDS)


def _imports(path: pathlib.Path):
    module = "qfdjax." + ".".join(path.relative_to(ROOT).with_suffix("").parts)
    package = module.rsplit(".", 1)[0] if path.name != "__init__.py" else module.removesuffix(".__init__")
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("qfdjax"):
                yield module, target, node.lineno
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("qfdjax"):
                    yield module, alias.name, node.lineno


def test_imports_only_run_downward():
    upward = []
    for path in ROOT.rglob("*.py"):
        for module, target, line in _imports(path):
            if path.name == "__init__.py" and path.parent == ROOT:
                continue  # the top-level re-exports load lazily from every layer
            # The package itself re-exports every layer: only commands may import it (for __version__).
            if (target == "qfdjax" and _layer(module) < COMMANDS) or _layer(target) > _layer(module):
                upward.append(f"{module}:{line} imports {target}")
    assert not upward, "\n".join(upward)


def test_wings_exist_and_few_loose_modules():
    for wing in ("model", "fitting", "scans", "stats", "bayes", "cli", "reference"):
        assert (ROOT / wing / "__init__.py").exists(), wing
    loose = sorted(p.name for p in ROOT.glob("*.py") if p.name not in ("__init__.py", "__main__.py"))
    assert len(loose) <= 8, loose


def test_long_modules_say_why():
    for path in ROOT.rglob("*.py"):
        text = path.read_text()
        if text.count("\n") > 320:
            assert "Why this file is long" in text, f"{path} has {text.count(chr(10))} lines and no reason"


def test_import_qfdjax_gives_float64_without_loading_jax():
    code = ("import sys, qfdjax; assert 'jax' not in sys.modules, 'jax imported eagerly';"
            "import jax.numpy as jnp; assert jnp.ones(2).dtype == jnp.float64;"
            "assert qfdjax.lepton_energies is qfdjax.model.energy.lepton_energies")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_float64_when_jax_came_first():
    code = ("import jax, jax.numpy as jnp; import qfdjax; assert jnp.ones(2).dtype == jnp.float64;"
            "print(qfdjax.fit.__module__)")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.strip() == "qfdjax.fitting.fit"


def test_reading_results_and_drawing_them_never_imports_jax():
    """`report` (no --fc), `verify` and the scan's plot workers load no JAX: a plot worker that imported it
    (through a constant it needed) made a warm 16x10 scan's figures take 1.6 s instead of 0.4."""
    code = ("import sys; import qfdjax.scans.plots, qfdjax.scans.plot_pool, qfdjax.scans.record, "
            "qfdjax.scans.analysis, qfdjax.scans.profile_plots, qfdjax.scans.plot_axes, qfdjax.scans.result, qfdjax.scans.digest, qfdjax.cli.verify, "
            "qfdjax.stats.toy_summary, qfdjax.scans.fc_plot, qfdjax.integrity; "
            "assert 'jax' not in sys.modules, [m for m in sys.modules if m.startswith('qfdjax')]")
    subprocess.run([sys.executable, "-c", code], check=True)
