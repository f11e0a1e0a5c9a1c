"""Imports TensorFlow without its start-up lines, and hides nothing else.

Importing TensorFlow 2.21 prints, on a machine without a GPU driver::

    WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
    I0000 00:00:1796167430.285179    6965 port.cc:153] oneDNN custom operations are on. ...
    I0000 00:00:1796167430.285758    6965 cudart_stub.cc:31] Could not find cuda drivers on your machine, ...

twice (libtensorflow_framework.so.2, then _pywrap_profiler_plugin.so, each
with its own copy of absl), and listing the devices adds ``E0000 ...
cuda_platform.cc:52] failed call to cuInit: ...``.  The first three are
logged by C++ static initializers while the libraries load, before absl's
logging is initialized and before TensorFlow reads TF_CPP_MIN_LOG_LEVEL:
no environment variable reaches them (TF_CPP_MIN_LOG_LEVEL=3 does not, nor
does setting TF_ENABLE_ONEDNN_OPTS, which must stay as it is: it changes
the numerics).  So while TensorFlow is imported and lists its devices,
file descriptor 2 runs through a small filter process that drops exactly
the lines of `NOISE`, and passes every other byte on as it comes.  The
filter is a separate process so that a crash during the import (a C++
check failure aborts at once) still reaches the console: the filter reads
to the end of the pipe whatever the importer wrote before dying.

``PFD_TF_STARTUP_LOGS=1`` turns the filter off (everything is printed).
"""
from __future__ import annotations

import os
import subprocess
import sys

SHOW_ENV = "PFD_TF_STARTUP_LOGS"

# The absl prefix of a line logged before absl::InitializeLog(): severity, "0000 00:00:<epoch>", thread id.
_PREFIX = r"[IWE]0000 00:00:\d+\.\d+ +\d+ "
NOISE = (
    # Printed by each library with its own absl before its first log line.
    r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR",
    # TF_ENABLE_ONEDNN_OPTS left at its default (on): a notice, the setting is not changed.
    _PREFIX + r"port\.cc:\d+\] oneDNN custom operations are on\. ",
    # No libcuda on this machine: TensorFlow runs on the CPU.
    _PREFIX + r"cudart_stub\.cc:\d+\] Could not find cuda drivers on your machine, GPU will not be used\.",
)
# Dropped only after the line above: without a driver, cuInit fails by construction.  With a driver
# (no cudart_stub line) a cuInit failure is a real error and is printed.
NO_DRIVER = NOISE[2]
CUINIT_WITHOUT_DRIVER = _PREFIX + r"cuda_platform\.cc:\d+\] failed call to cuInit: "

_FILTER = r"""
import re, sys
noise = [re.compile(p.encode()) for p in sys.argv[1:-2]]
no_driver, cuinit = re.compile(sys.argv[-2].encode()), re.compile(sys.argv[-1].encode())
without_driver = False
out = sys.stdout.buffer
for line in sys.stdin.buffer:
    if any(p.match(line) for p in noise):
        without_driver = without_driver or bool(no_driver.match(line))
        continue
    if without_driver and cuinit.match(line):
        continue
    out.write(line)
    out.flush()
"""


def import_tensorflow():
    """`import tensorflow` and list its devices with the start-up lines filtered; returns the module."""
    if "tensorflow" in sys.modules or os.environ.get(SHOW_ENV, "") not in ("", "0"):
        import tensorflow as tf

        return tf
    with _filtered_stderr():
        import tensorflow as tf

        tf.config.list_physical_devices()  # cuInit happens here; devices stay configurable
    return tf


class _filtered_stderr:
    """Sends file descriptor 2 through the filter process for the duration of the block."""

    def __enter__(self):
        self.saved = None
        try:
            sys.stderr.flush()
            saved = os.dup(2)
        except (OSError, ValueError, AttributeError):
            return self  # no usable stderr: nothing to filter
        try:
            self.filter = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", _FILTER, *NOISE, NO_DRIVER, CUINIT_WITHOUT_DRIVER],
                stdin=subprocess.PIPE, stdout=saved, stderr=saved)
        except OSError:
            os.close(saved)
            return self
        self.saved = saved
        os.dup2(self.filter.stdin.fileno(), 2)
        return self

    def __exit__(self, *exc):
        if self.saved is None:
            return False
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os.dup2(self.saved, 2)
        os.close(self.saved)
        self.filter.stdin.close()
        self.filter.wait()  # it has passed on every line before we go on
        return False
