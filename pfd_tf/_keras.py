"""The one place pfd_tf gets Keras from: Keras 2 (`tf_keras`), or a clear error.

Keras 3 cannot run `Model.fit` under ParameterServerStrategy, and
tensorflow-recommenders refuses it, so we never fall back to it silently.
"""
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

from pfd_tf.quiet_start import import_tensorflow  # noqa: E402

tf = import_tensorflow()  # without the C++ start-up lines (pfd_tf.quiet_start)

try:
    import tf_keras as keras  # noqa: E402
except ImportError as err:  # pragma: no cover - depends on the installation
    raise ImportError(
        "pfd_tf needs Keras 2 (the `tf_keras` package, version 2.21). "
        "Install it with `pip install tf_keras==2.21.0`."
    ) from err

if os.environ.get("TF_USE_LEGACY_KERAS") not in ("1", "true", "True"):
    raise RuntimeError(
        "TF_USE_LEGACY_KERAS is set to "
        f"{os.environ.get('TF_USE_LEGACY_KERAS')!r}, so TensorFlow uses Keras 3. "
        "pfd_tf needs Keras 2 (tf_keras): unset it or set TF_USE_LEGACY_KERAS=1."
    )
if not tf.keras.__name__.startswith("tf_keras"):
    raise RuntimeError(
        f"TensorFlow was imported with Keras 3 ({tf.keras.__name__}) active. "
        "pfd_tf needs Keras 2: import pfd_tf before TensorFlow, or set "
        "TF_USE_LEGACY_KERAS=1 before the first `import tensorflow`."
    )

__all__ = ["keras", "tf"]
