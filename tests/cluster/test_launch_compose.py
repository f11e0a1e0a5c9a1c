"""TF_CONFIG roles, and the docker-compose file checked the only way we can without a Docker engine."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml

from launch.compose import PORT, render
from launch.local import LocalCluster
from launch.topology import Topology, task_command
from pfd_tf.cluster.spec import ClusterError, current_task

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLUSTER = {"chief": ["c:1"], "worker": ["w0:1", "w1:1"], "ps": ["p0:1"]}


def _env(cluster=CLUSTER, task=None):
    return {"TF_CONFIG": json.dumps({"cluster": cluster, "task": task or {"type": "worker", "index": 1}})}


def test_no_tf_config_is_single_machine():
    assert current_task({}) is None


def test_roles_from_tf_config():
    task = current_task(_env())
    assert (task.type, task.index, task.name) == ("worker", 1, "worker-1")
    assert current_task(_env(task={"type": "evaluator", "index": 0})).name == "evaluator"
    assert current_task(_env(task={"type": "chief", "index": 0})).cluster["ps"] == ("p0:1",)


@pytest.mark.parametrize(
    "environ,key",
    [
        ({"TF_CONFIG": "{not json"}, "TF_CONFIG: not valid JSON"),
        (_env(task={"type": "boss", "index": 0}), "TF_CONFIG.task.type: unknown role 'boss'"),
        (_env(task={"type": "worker", "index": 2}), "TF_CONFIG.task.index: 2 but TF_CONFIG.cluster.worker lists 2"),
        (_env(cluster={"chief": ["c:1"], "worker": ["w:1"]}, task={"type": "worker", "index": 0}),
         "TF_CONFIG.cluster.ps: missing"),
        (_env(cluster={**CLUSTER, "master": ["m:1"]}), "TF_CONFIG.cluster.master: unknown job"),
        ({"TF_CONFIG": json.dumps({"cluster": CLUSTER})}, "TF_CONFIG.task: missing"),
    ],
)
def test_bad_tf_config_names_the_key(environ, key):
    with pytest.raises(ClusterError) as err:
        current_task(environ)
    assert key in str(err.value)


@pytest.mark.parametrize("workers,ps", [(2, 2), (4, 3), (1, 1)])
def test_compose_file_is_consistent(workers, ps):
    doc = yaml.safe_load(render(Topology(workers, ps)))
    services = doc["services"]
    expected = {"data", "chief", "evaluator"} | {f"worker-{i}" for i in range(workers)} | {f"ps-{i}" for i in range(ps)}
    assert set(services) == expected
    launcher_command = task_command("python", "/shared/data/config.yaml", "/shared/run")
    seen = {"chief": set(), "worker": set(), "ps": set()}
    for name, service in services.items():
        assert service["volumes"] == ["shared:/shared"]
        if name == "data":
            continue
        assert service["restart"] == "on-failure"
        assert service["command"] == launcher_command  # the very command the local launcher runs
        tf_config = json.loads(service["environment"]["TF_CONFIG"])
        assert service["environment"]["GRPC_FAIL_FAST"] == "use_caller"
        for job, addresses in tf_config["cluster"].items():
            for i, address in enumerate(addresses):
                host, port = address.split(":")
                assert host in services and int(port) == PORT, address
                assert host == (job if job == "chief" else f"{job}-{i}")
                assert str(PORT) in services[host]["expose"]
        task = tf_config["task"]
        assert current_task({"TF_CONFIG": service["environment"]["TF_CONFIG"]}).name == name
        if task["type"] in seen:
            seen[task["type"]].add(task["index"])
    assert seen == {"chief": {0}, "worker": set(range(workers)), "ps": set(range(ps))}
    assert set(services["chief"]["depends_on"]) == {"data"} | {f"worker-{i}" for i in range(workers)} | {
        f"ps-{i}" for i in range(ps)}


def test_committed_compose_file_is_the_generators():
    with open(os.path.join(ROOT, "docker", "docker-compose.yml")) as f:
        assert f.read() == render(Topology(2, 2))


def test_emit_compose_command_line(tmp_path):
    out = tmp_path / "compose.yml"
    proc = subprocess.run([sys.executable, "-m", "launch.cli", "--emit-compose", "3", "1", "--out", str(out)],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert set(yaml.safe_load(out.read_text())["services"]) >= {"worker-2", "ps-0", "chief"}


def test_local_cluster_gives_every_task_a_distinct_loopback_port(tmp_path):
    cluster = LocalCluster(Topology(3, 2), "c.yaml", str(tmp_path)).cluster
    addresses = [a for job in cluster.values() for a in job]
    assert len(addresses) == len(set(addresses)) == 6
    assert all(a.startswith("127.0.0.1:") for a in addresses)


def test_dockerfile_installs_the_package_and_downloads_nothing_at_run_time():
    text = open(os.path.join(ROOT, "docker", "Dockerfile")).read()
    assert "pip install ." in text and "FROM python:3.11-slim" in text
    for path in ("setup.py", "pfd_tf", "launch"):
        assert f"COPY {path}" in text
