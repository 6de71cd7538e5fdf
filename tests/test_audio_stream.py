"""Speech features as the samples arrive (s3d_fast.data.audio_stream) against the whole-file
path (audio.prepare, audio.log_mel, render.api.mel_windows): the same values to float
tolerance for any chunking, and each frame given out as soon as its look-ahead is in."""

import numpy as np
import pytest

from s3d_fast.data import audio
from s3d_fast.data import audio_stream as stream
from s3d_fast.data.errors import AudioFileError, AudioTooShortError, EmptyAudioError
from s3d_fast.render import api
from s3d_fast.render.stream import SpeechFile

TOL = 1e-5  # the mel projection's matrix product rounds differently for different frame counts


def _chunks(x, kind, rng):
    """Slices of ``x``: single samples (then larger, to keep the test short), random sizes,
    or one chunk larger than the whole."""
    i = 0
    while i < x.shape[0]:
        if kind == "one":
            k = 1 if i < 2500 else 1013
        elif kind == "random":
            k = int(rng.integers(1, 4000))
        else:
            k = x.shape[0] + 17
        yield x[i : i + k]
        i += k


def _whole(x, rate, fps):
    prepared = audio.prepare(x, rate)
    n = api.frame_count(prepared.samples.shape[0], audio.SAMPLE_RATE, fps)
    return prepared, api.mel_windows(audio.log_mel(prepared.samples), n, fps)


@pytest.mark.parametrize("kind", ["one", "random", "larger than the file"])
@pytest.mark.parametrize(
    "rate,fps,channels,dtype",
    [(16000, 25, 1, np.float32), (44100, 25, 2, np.float32), (8000, 30, 1, np.int16), (22050, 1, 1, np.float32)],
)
def test_windows_equal_the_whole_file_ones_for_any_chunking(kind, rate, fps, channels, dtype):
    rng = np.random.default_rng(rate + fps)
    n = int(rng.integers(rate, 2 * rate))
    x = rng.standard_normal((n, channels)) * 0.3
    x[n // 3 : n // 2] *= 5  # some full-scale samples
    x = (np.clip(x, -1, 1) * 32767).astype(np.int16) if dtype == np.int16 else x.astype(np.float32)
    whole, expected = _whole(x, rate, fps)

    features = stream.SpeechFeatureStream(rate, fps)
    got = [features.push(c) for c in _chunks(x, kind, rng)] + [features.flush()]
    got = np.concatenate(got)
    assert got.shape == expected.shape and features.n_frames == expected.shape[0]
    np.testing.assert_allclose(got, expected, rtol=0, atol=TOL)
    assert features.prepared.clipped_fraction == whole.clipped_fraction
    assert features.prepared.samples_out == whole.samples.shape[0]


@pytest.mark.parametrize("rate", [16000, 44100])
def test_prepared_samples_equal_the_whole_file_ones_bit_for_bit(rate):
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((rate * 2 + 7, 2)) * 0.4).astype(np.float32)
    prepared = stream.PreparedStream(rate)
    got = np.concatenate([prepared.push(c) for c in _chunks(x, "random", rng)] + [prepared.flush()])
    assert np.array_equal(got, audio.prepare(x, rate).samples)


def test_low_delay_preparation_passes_the_speech_band_and_holds_back_2_ms():
    rng = np.random.default_rng(5)
    t = np.arange(48000 + 11) / 48000
    speech_band = 0.5 * np.sin(2 * np.pi * 440 * t) + 0.3 * np.sin(2 * np.pi * 3000 * t)
    above = 0.2 * np.sin(2 * np.pi * 12000 * t)  # above 8 kHz: must not fold into the band
    x = np.stack([speech_band + above, speech_band - above], axis=1).astype(np.float32)
    prepared = stream.PreparedStream(48000, low_delay=True)
    n_in = n_out = 0
    parts = []
    for chunk in _chunks(x, "random", rng):
        parts.append(prepared.push(chunk))
        n_in, n_out = n_in + chunk.shape[0], n_out + parts[-1].shape[0]
        assert n_out >= n_in // 3 - 32  # never more than 32 samples (2 ms at 16 kHz) held back
    parts.append(prepared.flush())
    samples = np.concatenate(parts)
    assert prepared.delay() == pytest.approx(0.002)
    assert samples.shape[0] == audio.prepare(x, 48000).samples.shape[0]  # the count soxr gives
    np.testing.assert_allclose(samples[100:-100], speech_band[::3][100:-100], rtol=0, atol=1e-4)
    whole = stream.PreparedStream(48000, low_delay=True)
    assert np.array_equal(np.concatenate([whole.push(x), whole.flush()]), samples)  # chunking changes nothing


def test_log_mel_frames_equal_the_whole_file_ones_and_count_one_plus_n_over_hop():
    rng = np.random.default_rng(4)
    for n in (1, 199, 200, 799, 800, 12345):
        x = (rng.standard_normal(n) * 0.3).astype(np.float32)
        mel = stream.LogMelStream()
        got = np.concatenate([mel.push(c) for c in _chunks(x, "random", rng)] + [mel.flush()])
        expected = audio.log_mel(x)
        assert got.shape == expected.shape == (1 + n // audio.HOP, audio.N_MELS)
        np.testing.assert_allclose(got, expected, rtol=0, atol=TOL)


def test_each_mel_frame_comes_out_as_soon_as_its_lookahead_has_arrived():
    mel = stream.LogMelStream()
    x = np.random.default_rng(5).standard_normal(3000).astype(np.float32) * 0.1
    arrival = []  # sample count at which each frame came out
    for i in range(x.shape[0]):
        arrival += [i + 1] * mel.push(x[i : i + 1]).shape[0]
    m = np.arange(len(arrival))
    # Frame m is centred on sample 200 m: out when sample 200 m + 399 is in, not before.
    assert np.array_equal(arrival, audio.HOP * m + stream.MEL_LOOKAHEAD)
    assert stream.MEL_LOOKAHEAD == 400  # 25 ms at 16 kHz


@pytest.mark.parametrize("fps", [25, 30])
def test_each_window_comes_out_as_soon_as_its_lookahead_has_arrived(fps):
    features = stream.SpeechFeatureStream(audio.SAMPLE_RATE, fps)
    x = np.random.default_rng(6).standard_normal(16000).astype(np.float32) * 0.1
    arrival = []
    for i in range(0, x.shape[0], 10):  # 10-sample steps: the earliest arrival to within 10 samples
        arrival += [i + 10] * features.push(x[i : i + 10]).shape[0]
    i = np.arange(len(arrival))
    needed = audio.HOP * (stream.window_start(i, fps) + audio.MEL_STEP - 1) + stream.MEL_LOOKAHEAD
    assert np.all(np.asarray(arrival) >= needed) and np.all(np.asarray(arrival) < needed + 10)
    # At most 1880 samples (117.5 ms) past the frame's own time, and that bound is reached.
    late = needed - audio.SAMPLE_RATE * i / fps
    assert late.max() <= stream.WINDOW_LOOKAHEAD == 1880
    if fps == 25:
        assert late.max() == stream.WINDOW_LOOKAHEAD


def test_windows_wait_until_the_speech_ensures_their_frame_exists():
    # At 1 fps a frame's window is final long before the half frame that makes it count.
    features = stream.SpeechFeatureStream(audio.SAMPLE_RATE, 1)
    x = np.zeros(int(1.3 * audio.SAMPLE_RATE), np.float32)
    assert features.push(x).shape[0] == 1  # frame 0; frame 1 needs 1.5 s
    assert features.flush().shape[0] == 0 and features.n_frames == 1


def test_bad_speech_is_refused_as_the_whole_file_path_refuses_it():
    with pytest.raises(AudioFileError, match="NaN"):
        stream.PreparedStream(16000).push(np.array([0.1, np.nan], np.float32))
    with pytest.raises(EmptyAudioError):
        stream.PreparedStream(16000).flush()
    short = stream.PreparedStream(16000)
    short.push(np.zeros(639, np.float32))
    with pytest.raises(AudioTooShortError):
        short.flush()
    mixed = stream.PreparedStream(16000)
    mixed.push(np.zeros((5, 2), np.float32))
    with pytest.raises(AudioFileError, match="channels"):
        mixed.push(np.zeros((5, 3), np.float32))


def test_a_speech_file_is_read_in_blocks_as_load_audio_reads_it(tmp_path):
    rng = np.random.default_rng(7)
    x = (rng.standard_normal((22050 + 333, 2)) * 0.2).astype(np.float32)
    path = tmp_path / "s.wav"
    audio.write_wav(path, x, 22050)
    speech = SpeechFile(path, block=1000)
    blocks = list(speech)
    assert len(blocks) > 10 and all(b.ndim == 1 for b in blocks)
    assert np.array_equal(np.concatenate(blocks), audio.load_audio(path).samples)
    assert speech.scan() == audio.load_audio(path).samples.shape[0]  # and it can be read again
    (tmp_path / "bad.wav").write_bytes(b"RIFF....WAVEfmt nonsense")
    with pytest.raises(AudioFileError):
        SpeechFile(tmp_path / "bad.wav")


def test_a_videos_sound_track_is_read_as_it_is_decoded_as_read_speech_reads_it(tmp_path):
    from s3d_fast.data import video

    t = np.arange(3 * 16000) / 16000
    path = tmp_path / "talk.mp4"
    video.write_video(
        path, np.zeros((75, 64, 64, 3), np.uint8), audio=(0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    )
    speech = SpeechFile(path)
    blocks = list(speech)
    assert len(blocks) > 20  # AAC frames of 1024 samples, passed on as each is decoded
    whole = api.read_speech(path).samples
    assert np.array_equal(np.concatenate(blocks), whole)
    assert abs(whole.shape[0] - t.shape[0]) < 1024  # cut where the stream ends, not at the padded frame
    silent = tmp_path / "silent.mp4"
    video.write_video(silent, np.zeros((5, 64, 64, 3), np.uint8))
    with pytest.raises(AudioFileError, match="no audio track"):
        SpeechFile(silent)
