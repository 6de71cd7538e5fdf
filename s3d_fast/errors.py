"""User-facing errors: the CLI prints these as one line and exits non-zero."""


class S3DError(Exception):
    """Base class of errors whose message is meant for the user."""


class ExtensionBuildError(S3DError, RuntimeError):
    """The C++/CUDA kernels could not be built or loaded."""
