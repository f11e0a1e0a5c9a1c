"""The README and docs/ keep their promises: the quickstart trains, exports and serves as written, every config
key a shipped config uses (and every key the schema has) is in docs/config.md, links resolve, and the
repository ignores what a user's runs write."""
from __future__ import annotations

import dataclasses
import glob
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import yaml

from conftest import write_tiny_world
from pfd_tf.config import schema as config_schema, tasks as config_tasks, zoo as config_zoo
from pfd_tf.cli.train import run_task
from pfd_tf.datasets.scenarios import SCENARIOS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
REFERENCE = open(os.path.join(ROOT, "docs", "config.md"), encoding="utf-8").read()
LISTS = ("features", "teachers", "students")  # sections whose entries are mappings: `features[].kind`


def _block_after(marker: str, language: str) -> str:
    """The fenced code block that follows the HTML comment `<!-- marker ... -->` in the README."""
    match = re.search(rf"<!-- {marker}\b[^>]*-->\s*```{language}\n(.*?)```", README, re.S)
    assert match, f"README: no ```{language} block after <!-- {marker} -->"
    return match.group(1)


def test_the_quickstart_trains_exports_and_serves_in_a_fresh_process(tmp_path):
    """The quickstart's config on write_tiny_world's CSVs (its columns), then the serving example as written."""
    world = str(tmp_path / "clicks")
    write_tiny_world(world)
    config = os.path.join(world, "my.yaml")
    with open(config, "w") as f:
        f.write(_block_after("quickstart-config", "yaml"))
    model_dir = str(tmp_path / "runs" / "my_pfd")
    assert run_task(config, model_dir) == 0
    assert os.path.exists(os.path.join(model_dir, "export", "student", "saved_model.pb"))

    example = _block_after("serving-example", "python")
    assert '"runs/my_pfd/export/student"' in example
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # serving needs TensorFlow, not pfd_tf
    proc = subprocess.run([sys.executable, "-c", example + "\nimport sys; assert 'pfd_tf' not in sys.modules\n"],
                          capture_output=True, text=True, timeout=300, cwd=str(tmp_path), env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    probabilities = np.array([float(v) for v in re.findall(r"[0-9.]+(?:e-?[0-9]+)?", proc.stdout.strip())])
    assert probabilities.shape == (2,) and np.all((probabilities > 0) & (probabilities < 1)), proc.stdout


def _keys(raw: dict) -> set[str]:
    """Every key of a config as docs/config.md spells it: `train.batch_size`, `features[].kind`."""
    keys = set()
    for section, value in raw.items():
        if section in LISTS or section == "student":
            entries = [value] if section == "student" else value
            name = "students" if section == "student" else section
            keys |= {f"{name}[].{key}" for entry in entries for key in entry}
        elif isinstance(value, dict):
            keys |= {f"{section}.{key}" for key in value}
        else:
            keys.add(section)
    return keys


def _shipped_configs(directory: str) -> dict[str, dict]:
    """configs/*.yaml and what pfd-data writes for every scenario, parsed."""
    configs = {os.path.relpath(p, ROOT): yaml.safe_load(open(p)) for p in glob.glob(os.path.join(ROOT, "configs", "*.yaml"))}
    for scenario, generate in SCENARIOS.items():
        path = generate(os.path.join(directory, scenario), rows=4000, seed=0)
        configs[f"pfd-data --scenario {scenario}"] = yaml.safe_load(open(path))
    return configs


def _undocumented(keys) -> list[str]:
    return sorted(key for key in keys if f"`{key}`" not in REFERENCE)


def test_every_key_a_shipped_config_uses_is_in_the_reference(tmp_path):
    configs = _shipped_configs(str(tmp_path))
    assert len(configs) >= 3 + len(SCENARIOS)
    missing = {name: _undocumented(_keys(raw)) for name, raw in configs.items()}
    assert not any(missing.values()), {name: keys for name, keys in missing.items() if keys}


def test_every_key_of_the_schema_is_in_the_reference():
    sections = {"data": config_schema.DataConfig, "model": config_schema.ModelConfig,
                "distill": config_schema.DistillConfig, "train": config_schema.TrainConfig,
                "cluster": config_schema.ClusterConfig, "features[]": config_schema.FeatureSpec,
                "teachers[]": config_zoo.TeacherConfig, "students[]": config_zoo.NetworkConfig,
                "tasks[]": config_tasks.TaskConfig}
    keys = {f"{section}.{field.name.rstrip('_')}"  # distill.lambda_ is spelled `lambda`
            for section, cls in sections.items() for field in dataclasses.fields(cls)}
    assert not _undocumented(keys)


def _docs() -> list[str]:
    return [os.path.join(ROOT, "README.md")] + sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))


@pytest.mark.parametrize("path", _docs(), ids=lambda p: os.path.relpath(p, ROOT))
def test_links_resolve_and_cite_no_path_outside_the_repository(path):
    text = open(path, encoding="utf-8").read()
    assert "shared/seeds" not in text
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
        if not re.match(r"https?://", target):
            assert os.path.exists(os.path.join(os.path.dirname(path), target)), f"{path}: link to {target}"


def test_the_readme_cites_the_papers_by_title_and_link():
    for title, link in (
            ("Privileged Features Distillation at Taobao Recommendations", "https://arxiv.org/abs/1907.05171"),
            ("Ensembled CTR Prediction via Knowledge Distillation", "https://arxiv.org/abs/2011.04106"),
            ("Cross-Task Knowledge Distillation in Multi-Task Recommendation", "https://arxiv.org/abs/2202.09852"),
            ("Directed Acyclic Graph Factorization Machines for CTR Prediction via Knowledge Distillation",
             "https://arxiv.org/abs/2211.11159")):
        assert title in " ".join(README.split()) and link in README, title


def test_git_ignores_what_runs_and_data_write_and_nothing_of_the_package():
    if not os.path.isdir(os.path.join(ROOT, ".git")) and not os.path.isfile(os.path.join(ROOT, ".git")):
        pytest.skip("not a git checkout")
    paths = ["data/criteo/train/part-00.txt", "runs/pfd/metrics.json", "pfd_tf/data/files.py", "configs/criteo.yaml"]
    proc = subprocess.run(["git", "check-ignore", "--no-index", *paths], capture_output=True, text=True, cwd=ROOT)
    assert proc.stdout.split() == paths[:2], proc.stdout + proc.stderr


def test_the_set_up_command_writes_the_world_its_config_reads():
    """`pfd-data --out runs/cvr` then `pfd-launch --config configs/cvr_synthetic.yaml`: that config reads runs/cvr."""
    setup = README[README.index("## Set up"):README.index("\n## ", README.index("## Set up") + 1)]
    commands = re.findall(r"```bash\n(.*?)```", setup, re.S)
    assert len(commands) == 2 and commands[1].strip() == 'python -m pip install -e ".[test]" && python -m pytest tests -q'
    out = re.search(r"pfd-data --scenario cvr --out (\S+)", commands[0]).group(1)
    config = re.search(r"pfd-launch --config (\S+)", commands[0]).group(1)
    shipped = yaml.safe_load(open(os.path.join(ROOT, config)))
    reads = os.path.normpath(os.path.join(os.path.dirname(config), shipped["data"]["train_files"][0]))
    assert reads == os.path.join(out, "train", "*.csv")
