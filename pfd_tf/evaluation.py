"""Exact held-out evaluation of a checkpoint, outside any distribution strategy.

Under ParameterServerStrategy, `Model.evaluate` splits the held-out data
across workers, and exact one-pass evaluation ignores a custom `test_step`.
So the held-out numbers (the end of `pfd-train` and the sidecar evaluator
alike) come from here: the distiller is rebuilt with plain variables, the
checkpoint restored into it, and `test_step` run over every held-out row once,
in this process.
"""
from __future__ import annotations

from pfd_tf._keras import tf
from pfd_tf.config import Config
from pfd_tf.data.pipeline import eval_steps, make_dataset_fn
from pfd_tf.models.build import build_distiller
from pfd_tf.models.distiller import Distiller
from pfd_tf.optim import make_optimizer


def build_local_model(config: Config) -> Distiller:
    """The distiller with plain variables in this process, compiled for `evaluate`."""
    if tf.distribute.has_strategy():
        raise RuntimeError("build the evaluation model outside any distribution strategy scope")
    model = build_distiller(config)
    model.compile(optimizer=make_optimizer(config.train))
    model.optimizer.build(model.trainable_variables)
    return model


class Evaluator:
    """Evaluates checkpoints of one run on its held-out files; reuses one model."""

    def __init__(self, config: Config):
        self.config = config
        self.model = build_local_model(config)
        self.dataset_fn = make_dataset_fn(config, "eval", config.train.eval_batch_size, training=False)
        self.steps = eval_steps(config, self.dataset_fn.files)

    def __call__(self, checkpoint_path: str) -> dict:
        """Held-out metrics of the checkpoint, plus its global `step`."""
        tf.train.Checkpoint(model=self.model).read(checkpoint_path).expect_partial()
        results = self.model.evaluate(self.dataset_fn(None), steps=self.steps, return_dict=True, verbose=0)
        out = {name: float(value) for name, value in results.items()}
        out["step"] = int(self.model.optimizer.iterations.numpy())
        return out
