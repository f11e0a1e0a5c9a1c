"""MLP towers: Dense -> normalization -> LeakyReLU per hidden layer, then one logit.

Section 5.1 of the PFD paper: "We use LeakyReLU as the activation and insert
batch normalization before it."  The normalization is a config choice
(`model.normalization`): the paper's batch normalization, layer normalization,
or none (the Dense layer then has a bias).  The tower returns logits of shape
[batch]; the sigmoid is applied by the losses and at export.
"""
from __future__ import annotations

from typing import Sequence

from pfd_tf._keras import keras, tf
from pfd_tf.config import Normalization


@keras.utils.register_keras_serializable(package="pfd_tf")
class DenseBatchNorm(keras.layers.Layer):
    """Batch normalization of `[batch, units]` activations, whose running statistics fit any run length.

    Training normalizes by the batch's moments with TensorFlow's fused kernel
    (seen as `[batch, 1, 1, units]`: one FusedBatchNormV3 op forward and one
    backward; Keras' unfused 2-D batch norm profiled at a third of a baseline
    step, `benchmarks/overhead.py --profile`).  Inference normalizes by the
    running statistics, which the exported student serves with.

    Keras' running statistics start at mean 0, variance 1 and decay by
    `momentum` per step, so after n steps a fraction momentum**n of them is
    still that initial guess: half of it after 70 steps at 0.99, which skews
    a short run's exported predictions (issue 11).  Here the t-th update
    (t = 1, 2, ...) moves them by a factor max(1 - momentum, 1 / t): the
    plain mean of the batches' moments for the first 1 / (1 - momentum)
    steps, the usual exponential moving average after.  No initial guess
    survives the first step.
    """

    def __init__(self, momentum: float = 0.99, epsilon: float = 1e-3, **kwargs):
        super().__init__(**kwargs)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)

    def build(self, input_shape):
        units = int(input_shape[-1])
        self.gamma = self.add_weight(name="gamma", shape=[units], initializer="ones")
        self.beta = self.add_weight(name="beta", shape=[units], initializer="zeros")

        def statistic(name, initializer, shape=(units,)):
            # As Keras' BatchNormalization makes them (read the same on every replica).
            return self.add_weight(
                name=name, shape=list(shape), initializer=initializer, trainable=False,
                synchronization=tf.VariableSynchronization.ON_READ,
                aggregation=tf.VariableAggregation.MEAN, experimental_autocast=False)

        self.moving_mean = statistic("moving_mean", "zeros")
        self.moving_variance = statistic("moving_variance", "ones")
        self.moving_updates = statistic("moving_updates", "zeros", shape=())
        self.input_spec = keras.layers.InputSpec(ndim=2, axes={-1: units})
        super().build(input_shape)

    def call(self, inputs, training=None):
        x = tf.reshape(inputs, [-1, 1, 1, inputs.shape[-1]])
        if training:
            y, mean, variance = tf.compat.v1.nn.fused_batch_norm(
                x, self.gamma, self.beta, epsilon=self.epsilon, is_training=True)
            self._update_statistics(mean, variance)
        else:
            y, _, _ = tf.compat.v1.nn.fused_batch_norm(
                x, self.gamma, self.beta, mean=self.moving_mean, variance=self.moving_variance,
                epsilon=self.epsilon, is_training=False)
        return tf.reshape(y, tf.shape(inputs))

    def _update_statistics(self, mean, variance):
        count = self.moving_updates.assign_add(1.0)
        factor = tf.maximum(1.0 - self.momentum, 1.0 / count)
        self.moving_mean.assign_sub((self.moving_mean - tf.stop_gradient(mean)) * factor)
        self.moving_variance.assign_sub((self.moving_variance - tf.stop_gradient(variance)) * factor)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "epsilon": self.epsilon}


def recalibrate_batch_norm(model: keras.Model, batches, max_batches: int | None = None) -> int:
    """Recomputes every `DenseBatchNorm`'s running statistics at `model`'s current (final) weights.

    The running statistics average the batches' moments over the last
    1 / (1 - momentum) steps, while the weights were still moving: in a short
    run, moments of early weights (measured: a first-layer variance 15-27%
    below the final weights', an exported mean prediction 7% off the click
    rate).  This runs up to 1 / (1 - momentum) training batches forward at
    the final weights (`model.compute_losses`, training mode, no optimizer
    step) after resetting each layer's update count, so the statistics
    become the plain mean of those batches' moments.  Returns the number of
    batches run; 0 (nothing run) for a model without batch normalization.
    """
    layers = [layer for layer in model.submodules if isinstance(layer, DenseBatchNorm)]
    if not layers:
        return 0
    if max_batches is None:
        max_batches = max(1, round(1.0 / max(1e-6, 1.0 - min(layer.momentum for layer in layers))))
    for layer in layers:
        layer.moving_updates.assign(0.0)
    forward = tf.function(lambda ids, labels: model.compute_losses(ids, labels, training=True)["loss"])
    count = 0
    for ids, labels in batches.take(max_batches):
        forward(ids, labels)
        count += 1
    return count


def hidden_layers(
    units: Sequence[int],
    normalization: Normalization = Normalization.BATCH,
    batch_norm_momentum: float = 0.99,
    leaky_relu_alpha: float = 0.01,
    dropout: float = 0.0,
) -> list[keras.layers.Layer]:
    """Dense -> normalization -> LeakyReLU (-> Dropout) for each width in `units`.

    The Dense layer has no bias before a normalization (its offset `beta`
    takes that role), and one without.
    """
    normalization = Normalization(normalization)
    layers = []
    for i, width in enumerate(units):
        layers.append(keras.layers.Dense(width, use_bias=normalization is Normalization.NONE, name=f"dense_{i}"))
        if normalization is Normalization.BATCH:
            layers.append(DenseBatchNorm(batch_norm_momentum, name=f"batch_norm_{i}"))
        elif normalization is Normalization.LAYER:
            layers.append(keras.layers.LayerNormalization(name=f"layer_norm_{i}"))
        layers.append(keras.layers.LeakyReLU(alpha=leaky_relu_alpha, name=f"leaky_relu_{i}"))
        if dropout:
            layers.append(keras.layers.Dropout(dropout, name=f"dropout_{i}"))
    return layers


@keras.utils.register_keras_serializable(package="pfd_tf")
class MLPTower(keras.layers.Layer):
    def __init__(self, units: Sequence[int], leaky_relu_alpha: float = 0.01, dropout: float = 0.0,
                 normalization: Normalization | str = Normalization.BATCH, batch_norm_momentum: float = 0.99,
                 **kwargs):
        super().__init__(**kwargs)
        self.units = tuple(int(u) for u in units)
        self.leaky_relu_alpha = leaky_relu_alpha
        self.dropout = dropout
        self.normalization = Normalization(normalization)
        self.batch_norm_momentum = float(batch_norm_momentum)
        self.hidden = hidden_layers(self.units, self.normalization, self.batch_norm_momentum,
                                    leaky_relu_alpha, dropout)
        self.logit = keras.layers.Dense(1, name="logit")

    def call(self, inputs: tf.Tensor, training: bool | None = None, with_hidden: bool = False):
        """Logits `[B]`; with `with_hidden`, (logits, hidden outputs) as `forward` returns them."""
        x, hidden, layer_index = inputs, {}, 0
        for layer in self.hidden:
            x = layer(x, training=training)
            if isinstance(layer, (keras.layers.LeakyReLU, keras.layers.Dropout)):
                hidden[f"deep_{layer_index}"] = x
                if isinstance(layer, keras.layers.Dropout) or not self.dropout:
                    layer_index += 1
        hidden["final"] = x
        logits = tf.squeeze(self.logit(x), axis=-1)
        return (logits, hidden) if with_hidden else logits

    def forward(self, inputs: tf.Tensor, training: bool | None = None) -> tuple[tf.Tensor, dict]:
        """(logits `[B]`, hidden outputs): `deep_i`, the i-th hidden layer's activations (after dropout, if
        any), and `final`, the input of the logit layer (the last hidden layer, or `inputs` without one).

        Through `Layer.__call__`, as every call of the tower: a layer only ever used through a plain method
        is never marked built, and each SavedModel export then warned "Skipping full serialization of
        TF-Keras layer <MLPTower ...>, because it is not built" (twice: TensorFlow's and absl's logger).
        """
        return self(inputs, training=training, with_hidden=True)

    def get_config(self):
        return {
            **super().get_config(),
            "units": list(self.units),
            "leaky_relu_alpha": self.leaky_relu_alpha,
            "dropout": self.dropout,
            "normalization": self.normalization.value,
            "batch_norm_momentum": self.batch_norm_momentum,
        }
