"""Audio decoding, resampling and log-mel windows (docs/design.md section 4 / 5a)."""

import numpy as np
import pytest
import soundfile as sf

from s3d_fast import S3DError
from s3d_fast.data import audio
from s3d_fast.data.errors import AudioFileError, AudioTooShortError, EmptyAudioError


def _tone(freq, seconds, rate, amp=0.5):
    t = np.arange(int(seconds * rate)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _dominant_freq(x, rate):
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return np.fft.rfftfreq(len(x), 1 / rate)[np.argmax(spec)]


@pytest.mark.parametrize("ext,fmt", [("wav", "WAV"), ("flac", "FLAC"), ("ogg", "OGG")])
def test_formats_stereo_resampled_to_16k_mono(tmp_path, ext, fmt):
    rate = 44100
    left, right = _tone(1000, 0.5, rate), _tone(1000, 0.5, rate, amp=0.1)
    path = tmp_path / f"a.{ext}"
    sf.write(path, np.stack([left, right], 1), rate, format=fmt)
    a = audio.load_audio(path)
    assert a.sample_rate == 16000 and a.source_sample_rate == rate and a.source_channels == 2
    assert a.samples.dtype == np.float32 and a.samples.ndim == 1
    assert abs(a.samples.shape[0] - 8000) <= 2
    assert abs(_dominant_freq(a.samples, 16000) - 1000) < 5
    # Down-mix is the channel mean: amplitude (0.5 + 0.1) / 2.
    assert np.max(np.abs(a.samples[1000:-1000])) == pytest.approx(0.3, abs=0.03)
    assert not a.is_silent and a.clipped_fraction == 0.0


def test_resampler_rejects_aliasing():
    # A 7.5 kHz tone at 48 kHz is kept; a 12 kHz tone (above 8 kHz Nyquist) is removed, not folded.
    kept = audio.resample(_tone(7500, 0.5, 48000), 48000)
    removed = audio.resample(_tone(12000, 0.5, 48000), 48000)
    assert abs(_dominant_freq(kept, 16000) - 7500) < 5
    assert np.sqrt(np.mean(removed[500:-500] ** 2)) < 1e-3 * np.sqrt(np.mean(kept**2))


def test_log_mel_shape_range_and_tone_band():
    x = _tone(1000, 1.0, 16000)
    mel = audio.log_mel(x)
    assert mel.shape == (1 + 16000 // 200, 80) and mel.dtype == np.float32
    assert mel.min() >= -4 and mel.max() <= 4
    mid = mel[10:-10].mean(0)
    freqs = __import__("librosa").mel_frequencies(n_mels=82, fmin=55, fmax=7600)[1:-1]
    assert abs(freqs[np.argmax(mid)] - 1000) < 120


def test_silence_is_defined():
    a = audio.prepare(np.zeros(16000, np.float32), 16000)
    assert a.is_silent
    w = audio.audio_features(a)
    assert w.shape == (25, 80, 16)
    assert np.isfinite(w).all() and np.all(w == audio.MEL_MIN)


def test_clipping_is_clipped_and_reported(tmp_path):
    x = _tone(300, 0.5, 22050, amp=1.5)
    path = tmp_path / "loud.wav"
    sf.write(path, x, 22050, subtype="FLOAT")
    a = audio.load_audio(path)
    assert a.clipped_fraction > 0.3
    assert a.samples.max() <= 1.0 and a.samples.min() >= -1.0
    assert np.isfinite(audio.audio_features(a)).all()


def test_empty_short_corrupt_missing(tmp_path):
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros((0,), np.float32), 16000)
    with pytest.raises(EmptyAudioError):
        audio.load_audio(empty)
    short = tmp_path / "short.wav"
    sf.write(short, _tone(440, 0.02, 16000), 16000)  # 20 ms < one 40 ms video frame
    with pytest.raises(AudioTooShortError, match="shorter than one video frame"):
        audio.load_audio(short)
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" + bytes(range(200)))
    with pytest.raises(AudioFileError, match="cannot decode"):
        audio.load_audio(bad)
    with pytest.raises(AudioFileError, match="no such"):
        audio.load_audio(tmp_path / "missing.wav")
    nan = tmp_path / "nan.wav"
    x = _tone(440, 0.2, 16000)
    x[100] = np.nan
    sf.write(nan, x, 16000, subtype="FLOAT")
    with pytest.raises(AudioFileError, match="NaN"):
        audio.load_audio(nan)
    for cls in (AudioFileError, AudioTooShortError, EmptyAudioError):
        assert issubclass(cls, S3DError)


def test_exactly_one_frame_is_enough():
    a = audio.prepare(_tone(440, 0.04, 16000), 16000)
    assert a.num_video_frames == 1
    assert audio.audio_features(a).shape == (1, 80, 16)


def test_window_starts_match_design_formula():
    starts = audio.window_starts(500)
    expected = np.array([round(3.2 * i) - 8 for i in range(500)])
    np.testing.assert_array_equal(starts, expected)
    assert starts[:3].tolist() == [-8, -5, -2]


def test_windows_repeat_edge_frames():
    mel = np.arange(20 * 80, dtype=np.float32).reshape(20, 80)
    w = audio.mel_windows(mel, 6)
    assert w.shape == (6, 80, 16)
    # Frame 0 starts at -8: eight copies of mel[0], then mel[0..7].
    np.testing.assert_array_equal(w[0, :, :9], np.repeat(mel[0][:, None], 9, 1))
    np.testing.assert_array_equal(w[0, :, 9], mel[1])
    # Frame 5 starts at 8 and runs to 23 > 19: the tail repeats mel[19].
    np.testing.assert_array_equal(w[5, :, 11:], np.repeat(mel[19][:, None], 5, 1))


def test_windows_are_centred_on_their_frame():
    # A 1 kHz burst from 1.00 s to 1.04 s belongs to video frame 25: its window centre is loud.
    x = np.zeros(32000, np.float32)
    x[16000:16640] = _tone(1000, 0.04, 16000)
    w = audio.audio_features(audio.prepare(x, 16000))
    energy = w.mean(1)  # (T, 16)
    assert np.argmax(energy[25]) in (7, 8, 9, 10)
    assert energy[25].max() > energy[20].max() + 1.0


def test_integer_pcm_is_scaled():
    x = (_tone(500, 0.2, 16000, amp=0.5) * 32767).astype(np.int16)
    a = audio.prepare(x, 16000)
    assert np.max(np.abs(a.samples)) == pytest.approx(0.5, abs=0.01)
    u8 = (np.round(_tone(500, 0.2, 16000, amp=0.5) * 127) + 128).astype(np.uint8)
    assert np.max(np.abs(audio.prepare(u8, 16000).samples)) == pytest.approx(0.5, abs=0.02)


def test_a_header_claiming_more_than_the_file_holds_reads_what_it_holds(tmp_path):
    """A FLAC whose STREAMINFO claims 2^36 samples (256 GB as floats, allocated up front by a
    one-shot read): decoded in blocks under a 3 GB address-space limit, in a child process."""
    import subprocess
    import sys

    path = tmp_path / "claim.flac"
    sf.write(path, np.zeros(1600, np.float32), 16000)
    data = bytearray(path.read_bytes())
    at = 8 + 10  # "fLaC", the block header, then 10 bytes of STREAMINFO before its last 8
    data[at : at + 8] = (int.from_bytes(data[at : at + 8], "big") | ((1 << 36) - 1)).to_bytes(8, "big")
    path.write_bytes(bytes(data))
    assert sf.info(path).frames == (1 << 36) - 1
    code = (
        "import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))\n"
        "from s3d_fast.data.audio import load_audio, AudioFileError\n"
        "try:\n    print(load_audio(sys.argv[1]).samples.shape[0])\n"
        "except AudioFileError as exc:\n    print('error', exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "1600" or out.stdout.startswith("error"), out.stdout


def test_the_rest_inputs_are_digital_silence_and_a_quiet_rooms_noise():
    silence, room = audio.rest_mels()
    assert silence.shape == room.shape == (audio.N_MELS, audio.MEL_STEP)
    assert np.all(silence == audio.MEL_MIN)  # every band at the floor
    # The room's noise is heard (above the floor in every frame) but far below speech.
    assert (room.mean(0) > audio.MEL_MIN + 0.5).all()
    speech = audio.mel_windows(audio.log_mel(0.1 * np.sin(np.arange(6400) * 0.3).astype(np.float32)), 10)[5]
    assert room.max() < speech.max() - 2
    np.testing.assert_array_equal(audio.rest_mels(), audio.rest_mels())  # seeded: every bake the same
