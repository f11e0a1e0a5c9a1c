"""TensorFlow starts without its C++ start-up lines, and nothing else is hidden (`pfd_tf.quiet_start`)."""
from __future__ import annotations

import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
QUIET_START = os.path.join(ROOT, "pfd_tf", "quiet_start.py")
LOAD_ALONE = f"""
import importlib.util, os
spec = importlib.util.spec_from_file_location("quiet_start", {QUIET_START!r})
quiet_start = importlib.util.module_from_spec(spec)
spec.loader.exec_module(quiet_start)  # alone: pfd_tf._keras would import TensorFlow
"""
NOISE_LINES = (
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
    "I0000 00:00:1796167430.285179    6965 port.cc:153] oneDNN custom operations are on. You may see ...\n"
    "I0000 00:00:1796167430.285758    6965 cudart_stub.cc:31] Could not find cuda drivers on your machine, "
    "GPU will not be used.\n"
    "E0000 00:00:1796167435.834838    6965 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error\n"
)


def _run(code: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": ROOT, **env})


def test_importing_pfd_tf_prints_none_of_the_start_up_lines():
    """`import pfd_tf` (every entry point's first import) leaves stderr without a known start-up line."""
    import pfd_tf.quiet_start as quiet_start

    proc = _run("import pfd_tf; from pfd_tf._keras import tf; tf.constant(1); print('ok')")
    assert proc.returncode == 0 and proc.stdout == "ok\n", proc.stderr[-2000:]
    patterns = [re.compile(p) for p in (*quiet_start.NOISE, quiet_start.CUINIT_WITHOUT_DRIVER)]
    assert not [line for line in proc.stderr.splitlines() if any(p.match(line) for p in patterns)], proc.stderr


def test_the_filter_passes_every_other_line_even_when_the_process_aborts():
    """Lines that are not start-up noise reach stderr, in order, also from a process that dies by abort()."""
    code = LOAD_ALONE + f"""
with quiet_start._filtered_stderr():
    os.write(2, {NOISE_LINES!r}.encode())
    os.write(2, b"real: first\\n")
    os.write(2, b"E0000 00:00:1.2 7 cuda_platform.cc:52] failed call to cuInit: kept, a driver was found?\\n"[0:0])
    os.write(2, b"real: second, then abort\\n")
    os.abort()
"""
    proc = _run(code)
    assert proc.returncode == -6  # SIGABRT
    assert proc.stderr == "real: first\nreal: second, then abort\n"


def test_a_cuinit_failure_with_a_driver_present_is_printed():
    """cuInit failing is noise only after 'Could not find cuda drivers'; otherwise it is a real error."""
    line = "E0000 00:00:1796167435.834838    6965 cuda_platform.cc:52] failed call to cuInit: CUDA_ERROR_NO_DEVICE\n"
    code = LOAD_ALONE + f"""
with quiet_start._filtered_stderr():
    os.write(2, {line!r}.encode())
print("done")
"""
    proc = _run(code)
    assert proc.returncode == 0 and proc.stdout == "done\n"
    assert proc.stderr == line


def test_pfd_tf_startup_logs_shows_everything():
    """PFD_TF_STARTUP_LOGS=1: no filter (the escape hatch when TensorFlow's start-up needs reading)."""
    proc = _run("import pfd_tf._keras", PFD_TF_STARTUP_LOGS="1")  # pfd_tf alone does not load TensorFlow
    assert proc.returncode == 0
    assert "WARNING: All log messages before absl::InitializeLog()" in proc.stderr


def test_importing_pfd_tf_alone_does_not_load_tensorflow_but_sets_keras_2():
    """A command's --help answers without TensorFlow; the first module that needs it loads Keras 2."""
    proc = _run("import os, sys, pfd_tf; assert 'tensorflow' not in sys.modules; "
                "print(os.environ['TF_USE_LEGACY_KERAS'], pfd_tf.keras.__name__)")
    assert proc.returncode == 0 and proc.stdout.split() == ["1", "tf_keras"], proc.stderr[-2000:]


def test_keras_3_already_loaded_is_refused_at_import():
    """TensorFlow imported first with Keras 3: `import pfd_tf` says so at once, as before."""
    proc = _run("import tensorflow as tf; tf.keras; import pfd_tf", TF_USE_LEGACY_KERAS="0")
    assert proc.returncode != 0 and "pfd_tf needs Keras 2" in proc.stderr, proc.stderr[-2000:]
