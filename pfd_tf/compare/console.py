"""A run's console, written to its own `train.log`: pfd-compare's terminal shows one line per run.

A comparison trains dozens of runs in one process; their progress lines,
warnings and errors would bury the comparison's own lines, and a run that
went wrong must be readable afterwards.  For the duration of one run,
everything the run writes goes to `model_dir/train.log` (appended: a resumed
run adds to it):

- Python's `sys.stdout` and `sys.stderr` (progress lines, `print`, `warnings`);
- file descriptors 1 and 2 (TensorFlow's C++ logging, and any handler bound
  to the process's original streams);
- the stream handlers of the root, `tensorflow` and `absl` loggers, which hold
  the stream they were made with (absl's behind its `python_handler`).

All of it is put back when the run ends, however it ends.
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
from typing import Iterator

LOGGERS = ("", "tensorflow", "absl")  # "": the root logger, where absl's handler sits after app.run


def _stream_handlers() -> list[logging.StreamHandler]:
    found = []
    for name in LOGGERS:
        for handler in logging.getLogger(name).handlers:
            inner = getattr(handler, "python_handler", None)  # absl.logging.ABSLHandler
            for h in (handler, inner):
                if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler) and h not in found:
                    found.append(h)
    return found


def _redirect_fd(fd: int, target_fd: int, stack: contextlib.ExitStack) -> None:
    """Points `fd` at `target_fd` until `stack` closes (nothing if `fd` is closed: a daemon, some kernels)."""
    try:
        saved = os.dup(fd)
    except OSError:
        return
    stack.callback(os.close, saved)
    stack.callback(os.dup2, saved, fd)
    os.dup2(target_fd, fd)


def _redirect_handlers(log_file, stack: contextlib.ExitStack) -> None:
    """Points the loggers' stream handlers at `log_file` until `stack` closes.

    A handler made during the run (TensorFlow makes its own on first use)
    holds the redirected `sys.stderr`, the log file: it gets the stream
    `sys.stderr` was before the run.
    """
    before = {h: h.stream for h in _stream_handlers()}
    outside = sys.stderr

    def put_back():
        for handler in _stream_handlers():
            stream = before.get(handler, outside if handler.stream is log_file else None)
            if stream is not None and handler.stream is not stream:
                handler.stream = stream  # not setStream: it flushes the old stream, perhaps closed
    stack.callback(put_back)
    for handler in before:
        handler.setStream(log_file)


def _flush(*streams) -> None:
    for stream in streams:
        if stream is not None and not getattr(stream, "closed", False):
            stream.flush()


@contextlib.contextmanager
def run_console(path: str) -> Iterator:
    """Within the block, the process's console output goes to `path` (appended); yields the open file."""
    _flush(sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__)
    with open(path, "a", encoding="utf-8", buffering=1) as log_file, contextlib.ExitStack() as stack:
        for fd in (1, 2):
            _redirect_fd(fd, log_file.fileno(), stack)
        _redirect_handlers(log_file, stack)
        stack.callback(_flush, log_file, sys.__stdout__, sys.__stderr__)  # (last in, first out) before the rest
        stack.enter_context(contextlib.redirect_stdout(log_file))
        stack.enter_context(contextlib.redirect_stderr(log_file))
        yield log_file
