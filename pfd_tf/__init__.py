"""pfd_tf: Privileged Features Distillation (Xu et al., KDD 2020) on TensorFlow/Keras 2.

Importing the package selects Keras 2 (`tf_keras`) for TensorFlow before
TensorFlow is imported: ParameterServerStrategy in `Model.fit` and
tensorflow-recommenders both need Keras 2.
"""
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from pfd_tf._keras import keras  # noqa: E402  (must follow the env setup)

__all__ = ["keras"]
__version__ = "0.1.0"
