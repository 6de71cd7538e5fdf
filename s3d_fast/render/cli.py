"""``s3d-fast render``: image + speech -> mp4 (speech muxed in), free-view camera control.

With no arguments it renders the bundled demo (a held-out SynthTalk identity speaking the
bundled sentence, orbiting camera) with the bundled small checkpoint to ``s3d_demo.mp4``.

Every input is checked before the model runs, and the video is written to a temporary
name that is renamed into place only when complete (``s3d_fast.data.video.write_video``),
so a bad input or an interrupted render leaves no file under the output name.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

from .. import atomic
from .errors import RenderError

# Degrees of yaw either side; the source blend ghosts more the further the view turns
# (docs/experiments.md, "Known limits").
DEMO_ORBIT = 12.0
DEMO_OUT = "s3d_demo.mp4"
# Bake-time adaptation steps of the command-line tools (render, eval, serve): about 20 s on
# 2 cores, within the minute a one-shot bake may take (docs/experiments.md, "Adapting to the
# portrait at bake time").
ADAPT_STEPS = 100


def add_arguments(parser) -> None:
    # Nothing here imports torch: the top-level parser imports this module for --help.
    parser.add_argument(
        "--image",
        metavar="SRC",
        help="source portrait: a photo (the face is found, cropped and aligned) or an aligned "
        "data-set frame with a <stem>.npz camera sidecar (default: the bundled demo image)",
    )
    parser.add_argument(
        "--face",
        type=int,
        default=None,
        metavar="N",
        help="in a photo with several faces, animate face N (numbered from 1, left to right; default the largest)",
    )
    parser.add_argument(
        "--model-only",
        action="store_true",
        help="a photo's frames as the model paints them, without keeping the photo where the speech does not move it",
    )
    parser.add_argument(
        "--adapt-steps",
        type=int,
        default=ADAPT_STEPS,
        metavar="N",
        help="at bake time, refine what the model encoded of the portrait for N steps so it redraws it "
        f"(about 0.2 s a step on 2 cores; default {ADAPT_STEPS}; 0: off)",
    )
    parser.add_argument(
        "--audio",
        metavar="SPEECH",
        help="speech: a sound file (wav, flac, ogg, mp3) or the audio track of a video (mp4, m4a, "
        "mov...), resampled to 16 kHz mono (default: the bundled demo sentence)",
    )
    parser.add_argument(
        "--checkpoint", metavar="CKPT", help="trained model (default: the bundled small demo checkpoint)"
    )
    parser.add_argument(
        "--out", metavar="MP4", help=f"output video (default: {DEMO_OUT} for the demo, out.mp4 otherwise)"
    )
    parser.add_argument(
        "--size",
        type=int,
        default=None,
        help="output side in pixels, even, 64-1024 (default: the model's output resolution; "
        "other sizes are resampled with an antialiased bicubic filter)",
    )
    parser.add_argument("--fps", type=int, default=25, help="video frame rate (default 25, the rate models train at)")
    parser.add_argument("--yaw", type=float, default=None, help="free-view yaw offset in degrees about the head centre")
    parser.add_argument("--pitch", type=float, default=None, help="free-view pitch offset in degrees")
    parser.add_argument("--roll", type=float, default=None, help="free-view roll offset in degrees")
    parser.add_argument(
        "--orbit",
        type=float,
        default=None,
        metavar="DEG",
        help=f"sweep the yaw from -DEG to +DEG and back over the video (the demo uses {DEMO_ORBIT:g}); "
        "not with --yaw/--pitch/--roll",
    )
    parser.add_argument(
        "--pose-from",
        metavar="FILE",
        help="head-pose sequence of a preprocessed clip (its meta.npz or folder), looped or cut to the speech",
    )
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda (default auto: cuda when available)")
    parser.add_argument("--batch", type=int, default=4, help="frames rendered together, 1-64 (default 4)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _check_output(path: str) -> str:
    """Fail before any work if ``path`` cannot be written (probing the folder for real,
    since permission bits say nothing to root or on read-only mounts)."""
    if os.path.isdir(path) and not os.path.islink(path):
        raise RenderError(f"--out {path}: is a folder; give a file name such as {os.path.join(path, 'out.mp4')}")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise RenderError(f"--out {path}: the folder {folder} does not exist")
    try:
        atomic.check_output_file(path)
    except atomic.OutputPathError as exc:
        raise RenderError(f"--out {exc}") from None
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".s3d-write-test-"):
            pass
    except OSError as exc:
        raise RenderError(f"--out {path}: cannot write in {folder} ({exc.strerror or exc})") from None
    atomic.sweep_stale_temporaries(path)  # what a killed render of this --out left behind
    return path


def _check_file(path: str, what: str) -> str:
    if not os.path.exists(path):
        raise RenderError(f"--{what} {path}: no such file")
    return path


def run(args) -> int:

    from tqdm import tqdm

    from ..data.errors import AudioTooShortError
    from . import api, cameras, stream
    from .source import read_image

    demo = args.image is None and args.audio is None
    image = args.image if args.image is not None else api.DEMO_IMAGE
    speech_path = args.audio if args.audio is not None else api.DEMO_SPEECH
    out = args.out if args.out is not None else (DEMO_OUT if demo else "out.mp4")

    # Cheap checks first, so a typo never waits for a model to load.
    offsets = [v for v in (args.yaw, args.pitch, args.roll) if v is not None]
    if args.orbit is not None and offsets:
        raise RenderError("--orbit sweeps the yaw itself; use either --orbit or --yaw/--pitch/--roll")
    api.check_size(args.size)
    if args.face is not None and args.face < 1:
        raise RenderError(f"--face counts from 1 (the leftmost face), got {args.face}")
    api.check_batch(args.batch, "--batch")
    api.check_adapt_steps(args.adapt_steps, "--adapt-steps")
    for path, what in ((image, "image"), (speech_path, "audio")):
        if not os.path.exists(path):
            bundled = (
                " (the bundled demo asset is missing from this install)"
                if path in (api.DEMO_IMAGE, api.DEMO_SPEECH)
                else ""
            )
            raise RenderError(f"--{what} {path}: no such file{bundled}")
    pose_from = None
    if args.pose_from is not None:
        _check_file(args.pose_from, "pose-from")
        pose_from = cameras.load_pose_sequence(args.pose_from)
    _check_output(out)
    orbit = args.orbit
    if orbit is None and demo and not offsets and args.pose_from is None:
        orbit = DEMO_ORBIT

    api.check_fps(args.fps)
    read_image(image)  # a bad image fails before the model loads
    # The speech is read as a stream, three times over, never held whole: once here (every
    # error surfaces before the model loads, and the length gives the frame count), once to
    # fit the grid to it as `Identity.render` does, once to render.
    speech = stream.SpeechFile(speech_path)
    n_samples = speech.scan()
    n_frames = api.frame_count(n_samples, speech.sample_rate, args.fps)
    if n_frames < 1:
        raise AudioTooShortError(
            f"{n_samples / speech.sample_rate * 1000:.1f} ms of speech is shorter than one frame at {args.fps} fps"
        )
    renderer = api.Renderer(args.checkpoint, args.device)
    identity = renderer.bake(
        image,
        face=args.face,
        keep_photo=False if args.model_only else None,
        adapt_steps=args.adapt_steps,
        on_adapt_step=_step_bar("adapt", args.quiet),
    )
    if identity.source.faces > 1:
        print(
            f"{image}: {identity.source.faces} faces found; animating face {identity.source.face} "
            "(numbered from 1, left to right; --face N picks another)"
        )
    poses = cameras.CameraPath(
        identity.source.c2w,
        n_frames,
        yaw=args.yaw or 0.0,
        pitch=args.pitch or 0.0,
        roll=args.roll or 0.0,
        orbit=orbit,
        pose_from=pose_from,
    )
    bar = tqdm(total=n_frames, unit="frame", desc="render", disable=args.quiet, leave=False, file=sys.stderr)
    start = time.perf_counter()
    try:
        write_mp4(
            identity,
            speech,
            out,
            n_frames,
            fps=args.fps,
            poses=poses,
            batch=args.batch,
            size=args.size,
            on_frame=lambda: bar.update(1),
        )
    finally:
        bar.close()
    total = time.perf_counter() - start

    stats = identity.stats
    side = args.size or renderer.output_resolution
    print(
        f"wrote {out}: {stats.frames} frames at {side}x{side}, {args.fps} fps, "
        f"{stats.frames / args.fps:.2f} s video with {n_samples / speech.sample_rate:.2f} s of speech "
        f"({identity.source.kind} source, {renderer.device.type}, batch {args.batch}, {total:.1f} s in all)"
    )
    print(stats.summary())
    return 0


def write_mp4(identity, speech, out: str, n_frames: int, *, fps: int, poses, batch: int, size, on_frame=None) -> None:
    """The mp4 ``s3d-fast render`` writes: ``speech`` (a re-iterable stream of blocks, such as
    a :class:`~s3d_fast.render.stream.SpeechFile`) read once to fit the grid as ``render`` does
    and once to render, frames and sound written as they are made; ``on_frame()`` after each."""
    from ..data import video

    grid = identity.fit_grid(speech, speech.sample_rate, fps, n_frames=n_frames)
    with video.VideoWriter(out, fps=fps, sample_rate=speech.sample_rate) as writer:
        frames = identity.stream(
            _muxed(speech, writer), speech.sample_rate, fps=fps, pose=poses, batch=batch, size=size, grid=grid
        )
        for frame in frames:
            writer.add_frame(frame.image)
            if on_frame is not None:
                on_frame()


def _muxed(blocks, writer):
    """The speech's blocks, each also handed to the video's sound track as it passes."""
    for block in blocks:
        writer.add_audio(block)
        yield block


def _step_bar(desc: str, quiet: bool):
    """An ``on_step(done, steps)`` callback drawing a progress bar from the first step on
    (not while the face is still being found)."""
    from tqdm import tqdm

    bar = None

    def on_step(done: int, steps: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=steps, unit="step", desc=desc, disable=quiet, leave=False, file=sys.stderr)
        bar.update(done - bar.n)
        if done == steps:
            bar.close()

    return on_step
