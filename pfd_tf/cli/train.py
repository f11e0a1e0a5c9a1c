"""pfd-train: the one entrypoint of every task, single machine or cluster.

    pfd-train --config configs/cvr.yaml --model_dir /tmp/run [--set distill.lambda=0.3 ...]

Without TF_CONFIG it trains on this machine.  With TF_CONFIG (see
`pfd_tf.cluster`) it plays its role: `ps`/`worker` serve, `chief` trains under
ParameterServerStrategy, `evaluator` evaluates each checkpoint.  Every role
runs this same command, which is what `pfd-launch` and docker-compose start.
"""
from __future__ import annotations

import json
import os
import sys

# Every task of a cluster: fail RPCs to a lost peer at once so the coordinator
# can reschedule, instead of hanging in gRPC retries.  Must precede TensorFlow.
os.environ.setdefault("GRPC_FAIL_FAST", "use_caller")

from absl import app, flags  # noqa: E402

import pfd_tf  # noqa: E402,F401  (selects Keras 2 before TensorFlow loads)
from pfd_tf import config as config_lib  # noqa: E402
from pfd_tf.cluster import ClusterError, current_task, dispatcher_journal  # noqa: E402
from pfd_tf.data.pipeline import DataError  # noqa: E402
from pfd_tf.export import ExportError  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("config", None, "YAML config file.", required=True)
flags.DEFINE_string("model_dir", None, "Directory for checkpoints, logs, export and metrics.json.", required=True)
flags.DEFINE_multi_string("set", [], "Config override key=value, e.g. distill.lambda=0.3 (repeatable).")


def main(argv):
    del argv
    from absl import logging

    from pfd_tf._keras import tf

    logging.set_verbosity(logging.WARNING)  # progress comes from Keras and our own lines
    tf.get_logger().setLevel("WARNING")
    try:
        task = current_task()
        config = config_lib.load(FLAGS.config, FLAGS.set)
        if task is not None and task.type in ("ps", "worker"):
            from pfd_tf.cluster import serve

            serve(task, config.cluster.data_service_port_offset)
            return 0
        if task is not None and task.type == "evaluator":
            from pfd_tf.sidecar import run_sidecar

            run_sidecar(config, FLAGS.model_dir)
            return 0
        from pfd_tf.trainer import train  # imports TensorFlow: after flag parsing, for a fast --help

        strategy, dispatcher, data_service = None, None, None
        if task is not None:
            from pfd_tf.cluster import data_service_addresses, make_strategy
            from pfd_tf.data.service import start_dispatcher

            offset = config.cluster.data_service_port_offset
            dispatcher = start_dispatcher(task.cluster["chief"][0], offset,  # kept alive while training
                                          dispatcher_journal(FLAGS.model_dir, task))
            data_service = data_service_addresses(task, offset)[0]
            strategy = make_strategy(config)
        metrics = train(config, FLAGS.model_dir, strategy=strategy, data_service=data_service)
        del dispatcher
    except (config_lib.ConfigError, ClusterError, DataError, ExportError) as err:
        print(f"pfd-train: error: {err}", file=sys.stderr)
        return 2
    except (tf.errors.UnavailableError, tf.errors.AbortedError, tf.errors.CancelledError) as err:
        # A parameter server (or the whole cluster) went away: its variables are gone.
        checkpoint = tf.train.latest_checkpoint(os.path.join(FLAGS.model_dir, "checkpoints"))
        reason = str(err).strip().splitlines()[0][:300]
        print(f"pfd-train: error: lost a task of the cluster ({type(err).__name__}: {reason}). "
              f"Last checkpoint: {checkpoint or 'none'}; relaunch the cluster to resume from it.",
              file=sys.stderr)
        return 3
    print(json.dumps({k: metrics[k] for k in ("mode", "student", "teacher", "steps", "examples_per_second")}))
    return 0


def run():
    app.run(main)


if __name__ == "__main__":
    run()
