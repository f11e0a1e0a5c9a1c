"""Arrows run one way: `pfd_tf/models/` builds networks and never reaches up into what trains them.

`pfd_tf.distill` (the distiller, its terms, losses and ensemble) builds on
`pfd_tf.models`; the trainer, pfd-compare and the command lines build on both.
A module under `models/` that imports any of them, even lazily inside a
function, would close a cycle, so every import statement is read (ast), and
`pfd_tf.models.build` is imported in a fresh process to see what it loads.
"""
from __future__ import annotations

import ast
import os
import subprocess
import sys

import pfd_tf

PACKAGE = os.path.dirname(pfd_tf.__file__)
ROOT = os.path.dirname(PACKAGE)  # where `pfd_tf` is importable from
ABOVE_MODELS = ("pfd_tf.distill", "pfd_tf.trainer", "pfd_tf.compare", "pfd_tf.cli")


def _module_name(path: str, root: str) -> str:
    relative = os.path.relpath(path, root)[: -len(".py")].split(os.sep)
    return ".".join(relative[:-1] if relative[-1] == "__init__" else relative)


def imported_modules(path: str, root: str = ROOT) -> list[tuple[int, str]]:
    """(line, module) for every import in the file, at any depth; `from a import b` counts as `a.b` too
    (b may be a module), relative imports resolved against the file's package (its path under `root`)."""
    module = _module_name(path, root)
    package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), filename=path)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(parent + ([node.module] if node.module else []))
            found.append((node.lineno, base))
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return found


def _above(module: str) -> bool:
    return any(module == top or module.startswith(top + ".") for top in ABOVE_MODELS)


def test_models_never_import_distill_trainer_compare_or_cli():
    """No module under pfd_tf/models imports pfd_tf.distill, .trainer, .compare or .cli, at any depth."""
    checked, wrong = 0, []
    for root, _, files in os.walk(os.path.join(PACKAGE, "models")):
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.join(root, name)
                checked += 1
                wrong += [f"{os.path.relpath(path, PACKAGE)}:{line}: {module}"
                          for line, module in imported_modules(path) if _above(module)]
    assert checked > 20  # models/ and models/zoo/ were walked
    assert not wrong, "models/ imports what builds on it:\n" + "\n".join(wrong)


def test_import_walk_sees_imports_inside_functions_and_relative_ones(tmp_path):
    """The walk above would catch the lazy and the relative forms of the arrow it forbids."""
    package = tmp_path / "pfd_tf" / "models"
    package.mkdir(parents=True)
    source = package / "lazy.py"
    source.write_text("def f():\n    from pfd_tf.distill.terms import Hint\n    from .. import trainer\n"
                      "    import pfd_tf.cli.train\n    from pfd_tf import compare\n")
    modules = [module for _, module in imported_modules(str(source), root=str(tmp_path)) if _above(module)]
    assert modules == ["pfd_tf.distill.terms", "pfd_tf.distill.terms.Hint", "pfd_tf.trainer",
                       "pfd_tf.cli.train", "pfd_tf.compare"]


def test_building_networks_loads_no_distillation_module():
    """`import pfd_tf.models.build` (build_networks) in a fresh process loads no pfd_tf.distill module."""
    code = ("import sys\nimport pfd_tf.models.build as build\n"
            "print(sorted(m for m in sys.modules if m.startswith(('pfd_tf.distill', 'pfd_tf.trainer'))))\n"
            "print(hasattr(build, 'build_networks'))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": ROOT})
    assert proc.returncode == 0, proc.stderr[-2000:]
    loaded, has_build_networks = proc.stdout.strip().splitlines()[-2:]
    assert loaded == "[]", f"importing pfd_tf.models.build loaded {loaded}"
    assert has_build_networks == "True"
