"""User-facing errors: the CLI prints these as one line and exits non-zero."""

import signal
import threading


class S3DError(Exception):
    """Base class of errors whose message is meant for the user."""


class ExtensionBuildError(S3DError, RuntimeError):
    """The C++/CUDA kernels could not be built or loaded."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C's KeyboardInterrupt would be, so that every clean-up
    written for Ctrl-C (temporary files removed, a checkpoint saved) runs for it too."""


def _raise_terminated(signum, frame):
    raise Terminated()


def handle_sigterm() -> None:
    """From now on SIGTERM in this process raises :class:`Terminated` (main thread only,
    where Python delivers signals)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_terminated)
