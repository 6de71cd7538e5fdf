"""Errors of ``s3d-fast render``; all are :class:`S3DError`, so the CLI prints one line."""

from ..errors import S3DError


class RenderError(S3DError):
    """Base class of rendering errors (bad options, missing assets, bad inputs)."""


class CameraError(RenderError):
    """A camera sequence or pose file is unusable."""


class SourceImageError(RenderError):
    """The source image is missing, unreadable, or shows no face."""


class ImageLimitError(SourceImageError):
    """The image is larger than the reader takes, or a decompression bomb."""


class NoFaceError(SourceImageError):
    """Face detection found no face in the source image."""
