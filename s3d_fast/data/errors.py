"""Errors of the data layer; all are :class:`S3DError` so the CLI prints one line."""

from ..errors import S3DError


class DataError(S3DError):
    """Base class of data-layer errors."""


class MediaFileError(DataError):
    """A media file is missing or cannot be decoded."""


class AudioError(DataError):
    """Base class of audio errors."""


class AudioFileError(AudioError, MediaFileError):
    """The audio file is missing, unreadable or corrupt."""


class EmptyAudioError(AudioError):
    """The audio holds no samples."""


class AudioTooShortError(AudioError):
    """The audio is shorter than one video frame, so no feature window can be made."""


class VideoError(MediaFileError):
    """A video cannot be read or written."""


class ManifestError(DataError):
    """A data set's manifest is missing, malformed or inconsistent."""


class SchemaVersionError(ManifestError):
    """A manifest was written with a schema version this code does not read."""
