"""pfd_tf: Privileged Features Distillation (Xu et al., KDD 2020) on TensorFlow/Keras 2.

Importing the package selects Keras 2 (`tf_keras`) for TensorFlow before
TensorFlow is imported: ParameterServerStrategy in `Model.fit` and
tensorflow-recommenders both need Keras 2.  TensorFlow itself is imported by
the first module that needs it (through `pfd_tf._keras`, which raises a clear
error if Keras 3 is active anyway), not by the package: a command's `--help`
answers without loading it.  If TensorFlow is already loaded, that check
runs at once.
"""
import os
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

if "tensorflow" in sys.modules:  # imported before pfd_tf: say now whether its Keras is the right one
    import pfd_tf._keras  # noqa: E402,F401

__all__ = ["keras"]
__version__ = "0.1.0"


def __getattr__(name):
    """`pfd_tf.keras`: Keras 2, imported on first use."""
    if name == "keras":
        from pfd_tf._keras import keras

        return keras
    raise AttributeError(f"module 'pfd_tf' has no attribute {name!r}")
