"""Arrows run one way: `pfd_tf/models/` builds networks and never reaches up into what trains them.

`pfd_tf.distill` (the distiller, its terms, losses and ensemble) builds on
`pfd_tf.models`; the trainer, pfd-compare and the command lines build on both.
A module under `models/` that imports any of them, even lazily inside a
function, would close a cycle, so every import statement is read (ast), and
`pfd_tf.models.build` is imported in a fresh process to see what it loads.

The same walk keeps the dataset makers (`datasets/`) above the runtime readers
(`data/`) and away from networks and training, and the cluster's pieces
(`cluster/`) out of networks, losses, readers and makers; and every module of
`pfd_tf/` stays small enough to read in one sitting.
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


def _imports_under(folder: str):
    """(path relative to pfd_tf/, line, module) for every import of every module under pfd_tf/<folder>."""
    for root, _, files in os.walk(os.path.join(PACKAGE, folder)):
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.join(root, name)
                for line, module in imported_modules(path):
                    yield os.path.relpath(path, PACKAGE), line, module


def _within(module: str, tops) -> bool:
    return any(module == top or module.startswith(top + ".") for top in tops)


def test_dataset_makers_import_no_network_loss_trainer_or_cluster():
    """datasets/ writes worlds from numpy and the config's names: it may read data/ (its errors) and the
    metrics, never models/, distill/, the trainer, pfd-compare, the command lines or the cluster."""
    forbidden = ("pfd_tf.models", "pfd_tf.distill", "pfd_tf.trainer", "pfd_tf.compare", "pfd_tf.cli",
                 "pfd_tf.cluster", "pfd_tf.export", "pfd_tf.evaluation")
    found = list(_imports_under("datasets"))
    assert len({path for path, _, _ in found}) > 15  # every world's modules were read
    wrong = [f"{path}:{line}: {module}" for path, line, module in found if _within(module, forbidden)]
    assert not wrong, "datasets/ imports what trains:\n" + "\n".join(wrong)


def test_readers_never_import_the_dataset_makers():
    """data/ reads any user's files; what writes the synthetic worlds builds on it, never the reverse."""
    wrong = [f"{path}:{line}: {module}" for path, line, module in _imports_under("data")
             if _within(module, ("pfd_tf.datasets",))]
    assert not wrong, "data/ imports datasets/:\n" + "\n".join(wrong)


# The one arrow from below into cluster/: the pipeline hands a cluster's batches to the tf.data service
# (pfd_tf/data/pipeline.py builds the ServiceDataset, or with data.group_by grouped_service's).  To go when the dataset_fn takes the service as an
# argument from the trainer.
READS_THROUGH_THE_SERVICE = {("data/pipeline.py", "pfd_tf.cluster.data_service"),
                             ("data/pipeline.py", "pfd_tf.cluster.grouped_service")}


def test_networks_losses_readers_and_makers_never_import_the_cluster():
    """Where a run's tasks run is the trainer's and the command line's business: no module under
    models/, distill/, data/ (but the pipeline's read through the data service) or datasets/ imports
    pfd_tf.cluster."""
    wrong = []
    for folder in ("models", "distill", "data", "datasets"):
        for path, line, module in _imports_under(folder):
            if _within(module, ("pfd_tf.cluster",)) and not any(
                    path == allowed_path and module in (allowed, allowed.rpartition(".")[0])
                    for allowed_path, allowed in READS_THROUGH_THE_SERVICE):
                wrong.append(f"{path}:{line}: {module}")
    assert not wrong, "imports of pfd_tf.cluster from below:\n" + "\n".join(wrong)


def test_cluster_pieces_build_on_no_network_and_no_trainer():
    """cluster/ starts servers, the strategy, the data service, the watchdog and the lifeline without
    knowing the networks; only the evaluator task (sidecar.py) evaluates checkpoints, so it may build
    them (pfd_tf.evaluation), and none of cluster/ imports the trainer, pfd-compare or the command lines."""
    above = ("pfd_tf.trainer", "pfd_tf.compare", "pfd_tf.cli", "pfd_tf.datasets")
    networks = ("pfd_tf.models", "pfd_tf.distill", "pfd_tf.evaluation", "pfd_tf.export")
    found = list(_imports_under("cluster"))
    assert {"cluster/spec.py", "cluster/strategy.py", "cluster/data_service.py", "cluster/sidecar.py"} <= \
        {path for path, _, _ in found}
    wrong = [f"{path}:{line}: {module}" for path, line, module in found
             if _within(module, above) or (path != "cluster/sidecar.py" and _within(module, networks))]
    assert not wrong, "cluster/ imports what builds on it:\n" + "\n".join(wrong)


# What config/ may build on: the names several modules spell, the table-size estimate its memory check uses,
# the run directory (the fingerprint reads a run's config.yaml) and the zoo's registry (TensorFlow-free: the
# parameters and hidden outputs each model declares, which the config checks at load).
CONFIG_BUILDS_ON = ("pfd_tf.config", "pfd_tf.names", "pfd_tf.table_size", "pfd_tf.run_dir",
                    "pfd_tf.models.zoo.registry")


def test_the_config_builds_on_no_network_reader_loss_or_trainer():
    """Everything reads the config; config/ imports no pfd_tf module but CONFIG_BUILDS_ON (`pfd_tf` and
    `pfd_tf.models.zoo` themselves only as the packages those live in)."""
    found = list(_imports_under("config"))
    assert {"config/schema.py", "config/checks.py", "config/parse.py"} <= {path for path, _, _ in found}
    packages = ("pfd_tf", "pfd_tf.models.zoo")
    wrong = [f"{path}:{line}: {module}" for path, line, module in found
             if module.startswith("pfd_tf") and module not in packages and not _within(module, CONFIG_BUILDS_ON)]
    assert not wrong, "config/ imports what builds on it:\n" + "\n".join(wrong)


def _config_import_graph() -> dict[str, set[str]]:
    """Each module of pfd_tf/config/ (`pfd_tf.config.<name>`, the package `pfd_tf.config`) -> the ones it imports."""
    folder = os.path.join(PACKAGE, "config")
    modules = {_module_name(os.path.join(folder, name), ROOT): os.path.join(folder, name)
               for name in os.listdir(folder) if name.endswith(".py")}
    graph = {}
    for module, path in modules.items():
        # `from pfd_tf.config.x import y` names pfd_tf.config.x.y: the longest module it starts with is the one read
        graph[module] = {max((m for m in modules if imported == m or imported.startswith(m + ".")), key=len)
                         for _, imported in imported_modules(path) if _within(imported, ("pfd_tf.config",))}
        graph[module].discard(module)
    return graph


def test_config_modules_import_each_other_without_a_cycle():
    """The config's modules form no cycle (the package's __init__ included), so any of them imports first."""
    graph = _config_import_graph()
    assert len(graph) > 20 and "pfd_tf.config.schema" in graph["pfd_tf.config.checks"]
    state: dict[str, str] = {}

    def visit(module: str, trail: list[str]) -> list[str]:
        state[module] = "open"
        for after in sorted(graph[module]):
            if state.get(after) == "open":
                return trail + [module, after]
            if after not in state:
                cycle = visit(after, trail + [module])
                if cycle:
                    return cycle
        state[module] = "done"
        return []

    for module in sorted(graph):
        cycle = [] if module in state else visit(module, [])
        assert not cycle, "config/ imports in a cycle: " + " -> ".join(cycle)


def test_reading_a_config_loads_no_tensorflow():
    """`pfd_tf.config` (and the fingerprint) in a fresh process loads neither TensorFlow nor any pfd_tf module
    outside CONFIG_BUILDS_ON: pfd-data, pfd-compare's planning and the checks before a run stay quick."""
    code = ("import sys\nimport pfd_tf.config, pfd_tf.config.fingerprint\n"
            "print('tensorflow' in sys.modules)\n"
            "print(sorted(m for m in sys.modules if m.startswith('pfd_tf.')))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": ROOT})
    assert proc.returncode == 0, proc.stderr[-2000:]
    tensorflow, loaded = proc.stdout.strip().splitlines()[-2:]
    assert tensorflow == "False"
    outside = [m for m in ast.literal_eval(loaded)
               if m not in ("pfd_tf.models", "pfd_tf.models.zoo") and not _within(m, CONFIG_BUILDS_ON)]
    assert "pfd_tf.config.parse" in loaded and not outside, f"importing pfd_tf.config loaded {outside}"


MAX_LINES = 330
# Modules still over MAX_LINES, each to be split by its own change; empty since issue 21's split, and it only
# shrinks: a new module over the bound is split by concept, not listed here.
ALLOWED_OVER: set[str] = set()


def test_no_module_is_over_the_line_bound():
    """A module one reads in one sitting: no file of pfd_tf/ over MAX_LINES lines but ALLOWED_OVER, and
    every file listed there still is (so the list only shrinks)."""
    lengths = {}
    for root, _, files in os.walk(PACKAGE):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(root, name)
                with open(path, encoding="utf-8") as f:
                    lengths[os.path.relpath(path, PACKAGE).replace(os.sep, "/")] = sum(1 for _ in f)
    assert len(lengths) > 100
    over = sorted(f"{path}: {n} lines" for path, n in lengths.items() if n > MAX_LINES and path not in ALLOWED_OVER)
    assert not over, f"over {MAX_LINES} lines (split by concept):\n" + "\n".join(over)
    stale = sorted(path for path in ALLOWED_OVER if lengths.get(path, 0) <= MAX_LINES)
    assert not stale, f"in ALLOWED_OVER but not over {MAX_LINES} lines (or gone): remove {stale}"
