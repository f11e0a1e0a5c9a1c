"""Distillation, built on the networks of `pfd_tf.models` (never the other way round): the distiller of
Algorithm 1 (`distiller`, its progress metrics `metrics`, the loss functions `losses`, composed from a config
by `build`), the terms a student learns from (`terms`), how several teachers combine (`ensemble`), which
losses may move which variables (`routing`), and teachers restored from other runs (`pretrained`)."""
