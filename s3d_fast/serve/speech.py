"""Speech for the head to say: an uploaded sound file, or typed text spoken by espeak-ng.
Either becomes 16 kHz mono samples held by the session, read through the same decoder as
``s3d-fast render --audio`` (:class:`s3d_fast.render.stream.SpeechFile`)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass

import numpy as np

from ..data import audio as audio_mod
from ..data.errors import DataError
from ..render.errors import RenderError
from ..render.stream import SpeechFile
from .errors import LimitError, ServeError
from .limits import Limits

SAMPLE_RATE = audio_mod.SAMPLE_RATE
ESPEAK_INSTALL = (
    "install espeak-ng to speak typed text (Debian/Ubuntu: apt-get install espeak-ng; macOS: brew install espeak-ng)"
)


@dataclass
class Speech:
    samples: np.ndarray  # float32 16 kHz mono
    name: str

    @property
    def seconds(self) -> float:
        return self.samples.shape[0] / SAMPLE_RATE

    def describe(self) -> dict:
        return {"name": self.name, "seconds": round(self.seconds, 3)}


def decode_speech(data: bytes, name: str, limits: Limits) -> Speech:
    """An uploaded sound file (anything ``render --audio`` reads) as 16 kHz mono samples.
    The bytes go to a file of the server's own naming, removed at once."""
    if not data:
        raise ServeError("the speech upload is empty")
    if len(data) > limits.max_upload_bytes:
        raise LimitError(f"the speech file is {len(data):,} bytes, over the {limits.max_upload_bytes:,} limit")
    with tempfile.TemporaryDirectory(prefix="s3d-serve-") as folder:
        path = os.path.join(folder, "speech")
        with open(path, "wb") as f:
            f.write(data)
        try:
            blocks, total = [], 0
            for block in SpeechFile(path):
                total += block.shape[0]
                if total > limits.max_speech_seconds * SAMPLE_RATE:
                    raise LimitError(
                        f"the speech is longer than this server takes ({limits.max_speech_seconds:g} s); cut it"
                    )
                blocks.append(block)
        except (DataError, RenderError) as exc:
            raise ServeError(str(exc).replace(path, "the uploaded speech"), 415) from None
    samples = np.concatenate(blocks) if blocks else np.zeros(0, np.float32)
    if samples.shape[0] < SAMPLE_RATE // audio_mod.FPS:
        raise ServeError(f"the speech is {samples.shape[0] / SAMPLE_RATE * 1000:.0f} ms long, shorter than one frame")
    return Speech(samples.astype(np.float32, copy=False), _display_name(name))


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


def speak_text(text: str, limits: Limits, voice: str = "en") -> Speech:
    """``text`` spoken by espeak-ng (given on its standard input, never as a file or option)."""
    text = (text or "").strip()
    if not text:
        raise ServeError("type some text to speak")
    if len(text) > limits.max_text_chars:
        raise LimitError(f"the text is {len(text)} characters, over the {limits.max_text_chars} limit")
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise ServeError(f"espeak-ng is not installed: {ESPEAK_INSTALL}", 501)
    try:
        done = subprocess.run(
            [exe, "-v", voice, "--stdout"], input=text.encode("utf-8"), capture_output=True, timeout=60, check=False
        )
    except subprocess.TimeoutExpired:
        raise ServeError("espeak-ng took over 60 s on this text") from None
    if done.returncode != 0 or not done.stdout:
        raise ServeError(f"espeak-ng failed: {done.stderr.decode(errors='replace').strip()[:200]}", 500)
    return decode_speech(done.stdout, "typed text", limits)


def _display_name(name) -> str:
    name = "".join(c for c in (name or "speech") if c.isprintable())[:80]
    return name or "speech"
