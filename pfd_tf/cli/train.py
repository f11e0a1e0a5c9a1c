"""pfd-train: the one entrypoint of every task, single machine or cluster.

    pfd-train --config configs/cvr.yaml --model_dir /tmp/run [--set distill.lambda=0.3 ...]

Without TF_CONFIG it trains on this machine.  With TF_CONFIG (see
`pfd_tf.cluster.spec`) it plays its role: `ps`/`worker` serve, `chief` trains under
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

from absl import flags  # noqa: E402

import pfd_tf  # noqa: E402,F401  (selects Keras 2 before TensorFlow loads)
from pfd_tf import config as config_lib  # noqa: E402
from pfd_tf.cli import usage  # noqa: E402
from pfd_tf.cluster.spec import ClusterError, current_task, dispatcher_journal  # noqa: E402
from pfd_tf.run_dir import RunDirError  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("config", None, "YAML config file.", required=True)
flags.DEFINE_string("model_dir", None, "Directory for checkpoints, logs, export and metrics.json.", required=True)
flags.DEFINE_multi_string("set", [], "Config override key=value, e.g. distill.lambda=0.3 (repeatable).")
flags.DEFINE_boolean("overwrite", False, "Remove the run already in --model_dir (its checkpoints, logs, export, "
                     "metrics) and train afresh; without it, a model_dir holding a run with another config is refused.")
flags.DEFINE_boolean("allow-data-change", False, "Resume although the training files changed since the run in "
                     "--model_dir recorded them (a file added, removed, or with other rows); the change is recorded "
                     "in resumes.jsonl. Without it such a resume is refused.")
flags.DEFINE_alias("allow_data_change", "allow-data-change")


def main(argv):
    del argv
    from pfd_tf.cluster.lifeline import exit_with_launcher

    exit_with_launcher()  # a task of pfd-launch ends with its launcher, however that dies
    return run_task(FLAGS.config, FLAGS.model_dir, FLAGS.set, FLAGS.overwrite, FLAGS["allow-data-change"].value)


def run_task(config_path: str, model_dir: str, overrides=(), overwrite: bool = False,
             allow_data_change: bool = False) -> int:
    """Plays this process's role (TF_CONFIG) on the config; returns the exit status.

    0: done (or the run in `model_dir` had already finished); 2: bad config,
    data, model_dir or TF_CONFIG, said on stderr before anything is written,
    or a damaged checkpoint, or one that cannot be written (a full disk:
    `pfd_tf.checkpoints`); 3: a task of the cluster was lost; 4: the loss
    became non-finite or blew up (`pfd_tf.divergence`).
    """
    from absl import logging

    from pfd_tf._keras import tf
    from pfd_tf.callbacks import NonFiniteLossError
    from pfd_tf.data.pipeline import DataError  # imports TensorFlow: here, for a fast --help
    from pfd_tf.export import ExportError

    logging.set_verbosity(logging.WARNING)  # progress comes from our own lines
    tf.get_logger().setLevel("WARNING")
    try:
        task = current_task()
        config = config_lib.load(config_path, overrides)
        if task is not None and task.type in ("ps", "worker"):
            from pfd_tf.cluster.strategy import serve

            serve(task, config.cluster.data_service_port_offset)
            return 0
        if task is not None and task.type == "evaluator":
            from pfd_tf.cluster.sidecar import run_sidecar

            run_sidecar(config, model_dir, overwrite=overwrite)
            return 0
        from pfd_tf.trainer import train  # imports TensorFlow: after flag parsing, for a fast --help

        kept = []  # the dispatcher, alive while training

        def start_cluster(config):
            """chief: the tf.data dispatcher and the strategy, once the run's checks have passed."""
            from pfd_tf.cluster.data_service import start_dispatcher
            from pfd_tf.cluster.spec import data_service_addresses
            from pfd_tf.cluster.stall_watchdog import watch_for_stalls
            from pfd_tf.cluster.strategy import make_strategy

            offset = config.cluster.data_service_port_offset
            kept.append(start_dispatcher(task.cluster["chief"][0], offset, dispatcher_journal(model_dir, task)))
            strategy = make_strategy(config)
            kept.append(watch_for_stalls(strategy, task, config.cluster.stall_timeout_seconds, model_dir))
            return strategy, data_service_addresses(task, offset)[0]

        metrics = train(config, model_dir, start_cluster=start_cluster if task is not None else None,
                        overwrite=overwrite, allow_data_change=allow_data_change)
        del kept
    except (config_lib.ConfigError, ClusterError, DataError, ExportError, RunDirError) as err:
        print(f"pfd-train: error: {err}", file=sys.stderr)
        return 2
    except NonFiniteLossError as err:
        print(f"pfd-train: error: {err}", file=sys.stderr)
        return 4
    except (tf.errors.UnavailableError, tf.errors.AbortedError, tf.errors.CancelledError) as err:
        # A parameter server (or the whole cluster) went away: its variables are gone.
        from pfd_tf.cluster.spec import LOST_TASK, lost_task_message

        reason = str(err).strip().splitlines()[0][:300]
        print(f"pfd-train: error: {lost_task_message(f'{type(err).__name__}: {reason}', model_dir)}", file=sys.stderr)
        return LOST_TASK
    except (OSError, tf.errors.OpError) as err:
        from pfd_tf.checkpoints import out_of_space

        message = out_of_space(os.path.abspath(model_dir), err)
        if message is None:
            raise
        print(f"pfd-train: error: {message}", file=sys.stderr)
        return 2
    keys = ("mode", "student", "students", "teacher", "multi_auc", "steps", "examples_per_second")
    print(json.dumps({k: metrics.get(k) for k in keys if k in metrics or k not in ("students", "multi_auc")}))
    return 0


def run():
    usage.run(main, __name__)


if __name__ == "__main__":
    run()
