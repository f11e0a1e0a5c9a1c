"""Loads a SavedModel and scores CSV rows with it, without importing pfd_tf.

Usage: python serve_export.py EXPORT_DIR CSV OUT.npy SEQUENCE_COLUMN=MAX_LEN ...
Reads the signature's inputs by name from the CSV (sequences split on "|"
and padded with ""), calls `serving_default`, saves the probabilities (every
output by name when OUT ends with .npz).
"""
import csv
import os
import sys

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf  # noqa: E402

assert "pfd_tf" not in sys.modules


def main(export_dir, csv_path, out_path, *sequence_args):
    sequences = {a.split("=")[0]: int(a.split("=")[1]) for a in sequence_args}
    serve = tf.saved_model.load(export_dir).signatures["serving_default"]
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    inputs = {}
    for name, spec in serve.structured_input_signature[1].items():
        if name in sequences:
            padded = [(r[name].split("|") if r[name] else [])[: sequences[name]] for r in rows]
            values = [p + [""] * (sequences[name] - len(p)) for p in padded]
        else:
            values = [r[name] for r in rows]
        inputs[name] = tf.constant(np.array(values, dtype=np.float32 if spec.dtype == tf.float32 else object), spec.dtype)
    outputs = serve(**inputs)
    if out_path.endswith(".npz"):  # every output of the signature, by name
        np.savez(out_path, **{name: value.numpy() for name, value in outputs.items()})
    else:
        np.save(out_path, outputs["probability"].numpy())
    assert "pfd_tf" not in sys.modules


if __name__ == "__main__":
    main(*sys.argv[1:])
