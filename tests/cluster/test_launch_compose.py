"""TF_CONFIG roles, and the docker-compose file checked the only way we can without a Docker engine."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml

from launch.compose import PORT, render
from launch.final_evaluation import final_checkpoint_evaluated, latest_checkpoint
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


def _run_with_checkpoint(model_dir: str, step: int) -> None:
    os.makedirs(os.path.join(model_dir, "checkpoints"))
    with open(os.path.join(model_dir, "checkpoints", "checkpoint"), "w") as f:
        f.write(f'model_checkpoint_path: "ckpt-{step}"\nall_model_checkpoint_paths: "ckpt-{step}"\n')


def test_the_launcher_waits_for_the_evaluator_to_evaluate_the_final_checkpoint(tmp_path):
    """The chief finished, the evaluator is behind (a loaded machine): the cluster is stopped only once
    sidecar_metrics.jsonl holds the final checkpoint, so the run's last evaluation is not lost."""
    import io

    model_dir = str(tmp_path)
    _run_with_checkpoint(model_dir, 26)
    line = json.dumps({"step": 26, "checkpoint": os.path.join(model_dir, "checkpoints", "ckpt-26")})
    late_evaluator = ("import time, sys; time.sleep(2); "
                      f"open({os.path.join(model_dir, 'sidecar_metrics.jsonl')!r}, 'a').write({line!r} + '\\n'); "
                      "time.sleep(60)")  # still running after writing: the launcher must not wait for its exit
    out = io.StringIO()
    cluster = LocalCluster(Topology(1, 1), "c.yaml", model_dir, out=out)
    cluster.procs[("evaluator", 0)] = subprocess.Popen([sys.executable, "-c", late_evaluator])
    try:
        assert not final_checkpoint_evaluated(model_dir)
        assert cluster._await_final_evaluation() == 0
        assert final_checkpoint_evaluated(model_dir)
        assert cluster.procs[("evaluator", 0)].poll() is None  # stopped by the teardown, not waited out
        assert "waiting for the evaluator to evaluate the final checkpoint" in out.getvalue()
    finally:
        cluster.procs[("evaluator", 0)].kill()


def test_the_final_checkpoint_is_read_from_the_checkpoint_state_file(tmp_path):
    model_dir = str(tmp_path)
    assert latest_checkpoint(model_dir) is None and final_checkpoint_evaluated(model_dir)  # nothing to wait for
    _run_with_checkpoint(model_dir, 7)
    assert latest_checkpoint(model_dir) == "ckpt-7" and not final_checkpoint_evaluated(model_dir)
    with open(os.path.join(model_dir, "sidecar_metrics.jsonl"), "w") as f:
        f.write(json.dumps({"step": 5, "checkpoint": "/elsewhere/ckpt-5"}) + "\n{\"step\": 7, \"chec")  # mid-write
    assert not final_checkpoint_evaluated(model_dir)
    with open(os.path.join(model_dir, "sidecar_metrics.jsonl"), "wb") as f:  # damaged lines: never a crash
        f.write(b'[7]\n{"checkpoint": 7}\n\xff\xfe\n')
    assert not final_checkpoint_evaluated(model_dir)
    with open(os.path.join(model_dir, "sidecar_metrics.jsonl"), "w") as f:
        f.write("[7]\n" + json.dumps({"step": 7, "checkpoint": os.path.join(model_dir, "checkpoints", "ckpt-7")}) + "\n")
    assert final_checkpoint_evaluated(model_dir)
