"""pfd-launch: a whole parameter-server cluster on this machine, or its compose file.

    pfd-launch --config C --model_dir DIR --workers 2 --ps 2 [--set key=value ...] [--restart-on-failure]
    pfd-launch --emit-compose 4 2 [--out docker/docker-compose.yml]

The first starts chief, workers, parameter servers and an evaluator as local
processes on 127.0.0.1 and leaves in DIR what `pfd-train` leaves (metrics.json,
checkpoints, the student export); the second writes a docker-compose file
for that many workers and parameter servers.
"""
from __future__ import annotations

import sys

from absl import app, flags

from pfd_tf.cli import usage
from launch.compose import render
from launch.local import LocalCluster
from launch.topology import Topology

FLAGS = flags.FLAGS
flags.DEFINE_string("config", None, "YAML config file.")
flags.DEFINE_string("model_dir", None, "Directory for checkpoints, logs, export and metrics.json.")
flags.DEFINE_integer("workers", 2, "Number of workers.")
flags.DEFINE_integer("ps", 2, "Number of parameter servers.")
flags.DEFINE_boolean("evaluator", True, "Run a sidecar evaluator.")
flags.DEFINE_multi_string("set", [], "Config override key=value (repeatable).")
flags.DEFINE_boolean("restart_on_failure", False, "Restart failed tasks, as the compose restart policy does (the "
                     "whole cluster, on free ports, when a task's port was taken meanwhile).")
flags.DEFINE_integer("max_restarts", 3, "With --restart_on_failure: a task's restarts in a row that may fail (exit "
                     "again before the task is up); one more failure stops the cluster (exit status 3, or the "
                     "chief's).", lower_bound=0)
flags.DEFINE_list("emit_compose", None, "WORKERS,PS (or 'WORKERS PS'): print a docker-compose file and exit.")
flags.DEFINE_string("out", None, "With --emit-compose: write here instead of standard output.")


def main(argv):
    if FLAGS.emit_compose is not None:
        sizes = FLAGS.emit_compose + argv[1:]
        if len(sizes) != 2 or not all(s.isdigit() for s in sizes):
            raise app.UsageError("--emit-compose takes two numbers: WORKERS PS")
        text = render(Topology(int(sizes[0]), int(sizes[1])), overrides=FLAGS.set)
        if FLAGS.out:
            with open(FLAGS.out, "w") as f:
                f.write(text)
        else:
            sys.stdout.write(text)
        return 0
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    if not FLAGS.config or not FLAGS.model_dir:
        raise app.UsageError("--config and --model_dir are required to launch a cluster")
    try:
        topology = Topology(FLAGS.workers, FLAGS.ps, evaluator=FLAGS.evaluator)
    except ValueError as err:
        raise app.UsageError(str(err))
    cluster = LocalCluster(topology, FLAGS.config, FLAGS.model_dir, FLAGS.set,
                           restart_on_failure=FLAGS.restart_on_failure, max_restarts=FLAGS.max_restarts)
    return cluster.run()


def run():
    sys.argv = [sys.argv[0]] + [_underscored(a) for a in sys.argv[1:]]
    usage.run(main, __name__)


def _underscored(arg: str) -> str:
    """absl spells flags with underscores; accept the dashed forms too (--emit-compose)."""
    if not arg.startswith("--"):
        return arg
    name, sep, value = arg[2:].partition("=")
    return "--" + name.replace("-", "_") + sep + value


if __name__ == "__main__":
    run()
