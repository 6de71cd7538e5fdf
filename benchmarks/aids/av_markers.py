"""The audio-video offset of a live stream, from markers found in the media a client received:
a click in the sound (a short 3 kHz burst in a gap of the speech, above the voice's
harmonics), and the frames around it, matched against the same utterance rendered here.
In sync, frame ``i`` arrives ``i / fps - click`` seconds after the click's sound does. One
frame alone is too like its neighbours to name after video coding, so the offset is fitted
to all the frames received within ``WINDOW`` frames of the click at once: the delay that
makes the frames each would then be most like the frames received."""

from __future__ import annotations

import numpy as np

RATE = 16000
FPS = 25
GAP = 0.12  # seconds of silence around each click
CLICK = 0.005  # seconds of the click's burst
WINDOW = 12  # frames either side of a click matched
STEP = 0.004  # seconds between the delays tried
LARGEST = 0.2  # the largest offset tried, seconds, either way


def speech_with_clicks(samples: np.ndarray):
    """(samples with clicks, click times in seconds): 16 kHz speech with a click near its start,
    its end and every 15 s between, each in a gap of silence."""
    samples, seconds = samples.copy(), samples.shape[0] / RATE
    clicks = [2.0, *np.arange(15.0, seconds - 2.0, 15.0).tolist(), seconds - 2.0]
    t = np.arange(int(CLICK * RATE)) / RATE
    burst = (0.8 * np.sin(2 * np.pi * 3000 * t)).astype(np.float32)
    for c in clicks:
        gap = int((c - GAP / 2) * RATE)
        samples[gap : gap + int(GAP * RATE)] = 0
        samples[int(c * RATE) : int(c * RATE) + burst.shape[0]] = burst
    return samples, clicks


def click_times(audio: list, n: int) -> np.ndarray:
    """Client times of the ``n`` clicks in received sound [(arrival, mono pcm)]: each packet's
    samples are timed from the least-delayed packet's arrival, the sound's own pace after it."""
    rate = 48000 if audio[0][1].shape[0] >= 900 else RATE  # Opus decodes to 48 kHz
    sizes = np.array([pcm.shape[0] for _, pcm in audio])
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    arrivals = np.array([a for a, _ in audio])
    origin = np.min(arrivals - starts / rate)  # the client time of sample 0, least transit
    signal = np.concatenate([pcm for _, pcm in audio]).astype(np.float32) / 32768
    high = np.abs(np.diff(signal, n=2))  # the voice's harmonics (< 1.1 kHz) hardly pass
    found, level = [], 0.5 * high.max()
    for index in np.nonzero(high > level)[0]:
        if not found or index - found[-1] > rate:  # one per click, the first sample above
            found.append(index)
    if len(found) != n:
        raise AssertionError(f"found {len(found)} clicks in the received sound, expected {n}")
    return origin + np.array(found) / rate


def reference_frames(identity, speech: np.ndarray, clicks: list) -> dict:
    """Frame index -> image, rendered here as the server renders, for the frames near the clicks."""
    from s3d_fast.serve.camera import Camera

    wanted = sorted({i for c in clicks for i in range(round(c * FPS) - WINDOW, round(c * FPS) + WINDOW + 1)})
    chunks = (speech[i : i + 640] for i in range(0, speech.shape[0], 640))
    stream = identity.stream(chunks, RATE, fps=FPS, pose=Camera().pose(identity.source.c2w), batch=1)
    stream.skip_to(wanted[0])
    frames = {}
    for frame in stream:
        if frame.index in wanted:
            frames[frame.index] = frame.image
        later = [i for i in wanted if i > frame.index]
        if not later:
            break
        stream.skip_to(later[0])
    return frames


def face(image: np.ndarray) -> np.ndarray:
    """The lower face, 4x4-pixel means (coding noise averages out, the mouth's shape stays)."""
    lower = image[120:216, 64:192].astype(np.float32)
    return lower.reshape(24, 4, 32, 4, 3).mean(axis=(1, 3))


def offsets_from_markers(identity, speech, clicks, frames, audio) -> np.ndarray:
    """Milliseconds each click's frames arrive later than its sound (positive: the picture late)."""
    heard = click_times(audio, len(clicks))
    reference = {i: face(image) for i, image in reference_frames(identity, speech, clicks).items()}
    offsets = []
    for click, at in zip(clicks, heard):
        reach = WINDOW / FPS - LARGEST  # frames whose every candidate index is rendered
        got = [(arrival - at, face(image)) for arrival, _, image in frames if abs(arrival - at) < reach]
        if len(got) < 3:
            raise AssertionError(f"{len(got)} frames received around the click at {click} s")
        fits = []
        for delay in np.arange(-LARGEST, LARGEST + STEP / 2, STEP):
            indices = [int(round((rel - delay + click) * FPS)) for rel, _ in got]
            fits.append((np.mean([np.mean((g - reference[i]) ** 2) for (_, g), i in zip(got, indices)]), delay))
        best = min(error for error, _ in fits)
        delays = [delay for error, delay in fits if error <= best * (1 + 1e-6)]
        offsets.append(1000 * float(np.mean(delays)))  # the middle of the best delays
    return np.array(offsets)
