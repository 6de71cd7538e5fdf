"""Write the bundled demo assets of ``s3d-fast render`` into s3d_fast/assets/demo/.

    python tools/make_demo_assets.py                      # speech.wav only
    python tools/make_demo_assets.py --dataset DATA_DIR   # + image.png and its sidecar image.npz

speech.wav: a fixed sentence of SynthTalk phonemes (s3d_fast.data.synthtalk.phonemes)
spoken by SynthTalk's formant synthesiser (speech.py), 4.0 s, 16 kHz mono 16-bit PCM.
Deterministic: the same file on every run.

image.png + image.npz: one frame of a *held-out* identity of a SynthTalk data set (never
trained on, so the demo shows one-shot generalisation), at the data set's resolution, with
its camera-to-head ``c2w``, intrinsics ``K`` and face ``mask`` in the sidecar that marks it
as an aligned data-set frame (see s3d_fast/render/source.py). The frame chosen is the one
with the mouth most nearly closed (SynthTalk's ground-truth jaw opening), so the source
shows a neutral face.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # run from a clone without installing

from PIL import Image  # noqa: E402

from s3d_fast.atomic import atomic_path  # noqa: E402
from s3d_fast.data import audio as audio_mod  # noqa: E402
from s3d_fast.data.synthtalk import phonemes, speech  # noqa: E402
from s3d_fast.render.source import write_sidecar  # noqa: E402

DEFAULT_OUT = os.path.join(os.path.dirname(HERE), "s3d_fast", "assets", "demo")
SECONDS = 4.0
# The sentence, word by word (SynthTalk's inventory: a e i o u m b p n t l s f sh),
# "_" a pause. Bilabials (m b p) close the lips and open vowels (a o) open the jaw, so the
# demo shows the full range of mouth shapes.
SENTENCE = "ma-li to-sa _ nu-fe pa-bo _ shi-la te-mo fu-sa"
SEED = 20240601


def sentence_segments(sentence: str = SENTENCE, seconds: float = SECONDS):
    """Segments of the fixed sentence: each phoneme at the middle of its duration range,
    a short lead-in silence, and trailing silence up to ``seconds``."""
    symbols = ["_"]
    for word in sentence.split():
        if word == "_":
            symbols.append("_")
            continue
        for syllable in word.split("-"):
            # Onsets are the longest matching consonant symbol ("sh" before "s").
            onset = "sh" if syllable.startswith("sh") else syllable[:-1]
            if onset:
                symbols.append(onset)
            symbols.append(syllable[-1])
    segments, t = [], 0.0
    for sym in symbols:
        lo, hi = phonemes.INVENTORY[sym].duration
        d = 0.5 * (lo + hi)
        segments.append(phonemes.Segment(sym, t, t + d))
        t += d
    if t > seconds - 0.1:
        raise ValueError(f"the sentence takes {t:.2f} s, more than {seconds} s")
    segments.append(phonemes.Segment("_", t, seconds))
    return segments


def make_speech(seconds: float = SECONDS) -> np.ndarray:
    rng = np.random.default_rng(SEED)
    return speech.synthesize(sentence_segments(seconds=seconds), seconds, speech.Voice(f0=125.0), rng)


def pick_demo_frame(dataset: str, identity: str | None = None):
    """(image uint8 (R, R, 3), c2w, K, mask, description) from a held-out clip."""
    from s3d_fast.data import video
    from s3d_fast.data.manifest import load_manifest

    m = load_manifest(dataset)
    clips = [c for c in m.clips_in("heldout") if identity is None or c["identity"] == identity]
    if not clips:
        which = f"of identity {identity!r}" if identity else ""
        raise SystemExit(f"{dataset}: no held-out clip {which} (make the data set with --heldout >= 1)")
    clip = clips[0]
    with np.load(m.path(clip["meta"]), allow_pickle=False) as z:
        meta = {k: z[k] for k in ("c2w", "K", "masks", "valid") if k in z.files}
        jaw = z["visemes"][:, 0] if "visemes" in z.files else None
    n = min(clip["n_frames"], meta["c2w"].shape[0])
    score = np.where(meta["valid"][:n], 0.0, np.inf)
    if jaw is not None:
        score = score + jaw[:n]
    i = int(np.argmin(score))
    frames = video.read_video(m.path(clip["frames"]), with_audio=False).frames
    return frames[i], meta["c2w"][i], meta["K"], meta["masks"][i], f"clip {clip['id']} frame {i}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", help="a SynthTalk data set folder with held-out identities")
    parser.add_argument("--identity", help="held-out identity id to take (default: the first)")
    parser.add_argument("--out", default=DEFAULT_OUT, help=f"asset folder (default {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)

    wav = os.path.join(args.out, "speech.wav")
    audio_mod.write_wav(wav, make_speech())
    print(f"wrote {wav}")
    if args.dataset:
        image, c2w, K, mask, what = pick_demo_frame(args.dataset, args.identity)
        png = os.path.join(args.out, "image.png")
        with atomic_path(png) as tmp:
            Image.fromarray(image).save(tmp, optimize=True)
        side = write_sidecar(png, c2w, K, mask)
        print(f"wrote {png} and {side} ({what} of {args.dataset})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
