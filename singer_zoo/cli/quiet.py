"""Hide TensorFlow's native log lines from the command line (unless `singer-zoo --verbose`).

TensorFlow and LiteRT write C++ log lines straight to file descriptor 2 ("Could not find
cuda drivers", "failed call to cuInit: UNKNOWN ERROR (303)", oneDNN and CPU-instruction
notes, the XNNPACK delegate), some before TF_CPP_MIN_LOG_LEVEL is read and some whatever
its value, so a new user reads them as failures. `native_logs_hidden()` points descriptor
2 at a pipe for the duration of a command; a thread copies every line to the real stderr
except those in the native log formats (`NATIVE_LOG`), so our own messages, warnings and
tracebacks still show. TensorFlow's Python warnings (retracing notes) are raised to ERROR.
"""
from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import threading

NATIVE_LOG = re.compile(
    rb"^(?:[IWEF]\d{4} [\d:.]+ +\d+ [\w./-]+:\d+\] "  # absl / tsl C++ logging
    rb"|WARNING: All log messages before absl::InitializeLog\(\)"
    rb"|To enable the following instructions: "  # second line of the CPU-feature note
    rb"|INFO: Created TensorFlow Lite )")  # LiteRT's own logger


def _forward(read_fd: int, write_fd: int) -> None:
    with os.fdopen(read_fd, "rb") as pipe:
        for line in pipe:
            if not NATIVE_LOG.match(line):
                os.write(write_fd, line)


@contextlib.contextmanager
def native_logs_hidden():
    """Within the block, drop native log lines written to stderr (see the module doc)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # fewer lines to filter
    tf_log = logging.getLogger("tensorflow")
    level = tf_log.level
    tf_log.setLevel(logging.ERROR)
    sys.stderr.flush()
    real = os.dup(2)
    read_fd, write_fd = os.pipe()
    os.dup2(write_fd, 2)
    os.close(write_fd)
    thread = threading.Thread(target=_forward, args=(read_fd, real), daemon=True)
    thread.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(real, 2)  # closes the pipe's last write end: the thread reads to the end
        thread.join(timeout=5)
        if not thread.is_alive():  # else a child process still holds the pipe
            os.close(real)
        tf_log.setLevel(level)
