"""``s3d-fast preprocess``: real talking-head videos -> the data-set format."""

from __future__ import annotations

MAX_SMOOTH = 100.0  # frames: four seconds of crop smoothing is already a still crop


def add_arguments(parser) -> None:
    parser.add_argument("videos", nargs="+", metavar="VIDEO", help="input videos (any format PyAV decodes)")
    parser.add_argument("--out", required=True, help="output data set folder (re-running skips finished clips)")
    parser.add_argument("--size", type=int, default=256, help="aligned resolution, even (default 256)")
    parser.add_argument(
        "--smooth", type=float, default=1.5, help="temporal smoothing of the crop, in frames (default 1.5)"
    )
    parser.add_argument(
        "--heldout", nargs="*", default=[], metavar="VIDEO", help="videos whose identity is held out of training"
    )
    parser.add_argument("--overwrite", action="store_true", help="redo clips that already exist")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args) -> int:
    import os

    from tqdm import tqdm

    from ...atomic import output_folder
    from ..errors import DataError
    from ..manifest import SCHEMA_VERSION, Manifest, write_manifest
    from ..npz import load_npz
    from .pipeline import FPS, process_video, write_processed

    if not 32 <= args.size <= 2048 or args.size % 2:
        raise DataError(f"--size must be an even number from 32 to 2048, got {args.size}")
    if not 0.0 <= args.smooth <= MAX_SMOOTH:  # NaN fails too
        raise DataError(f"--smooth must be from 0 to {MAX_SMOOTH:g} frames, got {args.smooth}")
    missing = [v for v in args.videos if not os.path.isfile(v)]
    if missing:
        raise DataError(f"{missing[0]}: no such video file")
    heldout = {os.path.abspath(v) for v in args.heldout}
    stems = [os.path.splitext(os.path.basename(v))[0] for v in args.videos]
    if len(set(stems)) != len(stems):
        raise DataError("two input videos share a file name; rename one so clip ids stay unique")
    manifest = Manifest(FPS, 16000, args.size, [], [], {"kind": "video", "size": args.size}, SCHEMA_VERSION)
    with output_folder(args.out):
        for path, stem in tqdm(list(zip(args.videos, stems)), unit="video", disable=args.quiet, leave=False):
            folder = os.path.join(args.out, "clips", stem)
            meta = os.path.join(folder, "meta.npz")
            if args.overwrite or not os.path.isfile(meta):
                clip = process_video(path, args.size, args.smooth)
                if clip.n_faceless:
                    print(f"{path}: {clip.n_faceless} of {clip.frames.shape[0]} frames had no face (kept, valid=False)")
                write_processed(folder, clip)
            valid = load_npz(meta, keys=("valid",), what="clip's meta.npz").get("valid")
            if valid is None or valid.ndim != 1 or valid.shape[0] < 1:
                raise DataError(f"{meta}: no per-frame 'valid' array; pass --overwrite to process {path} again")
            n_frames = int(valid.shape[0])
            split = "heldout" if os.path.abspath(path) in heldout else "train"
            manifest.identities.append({"id": stem, "split": split, "source": os.path.basename(path)})
            rel = f"clips/{stem}"
            manifest.clips.append(
                {
                    "id": stem,
                    "identity": stem,
                    "frames": f"{rel}/frames.mp4",
                    "audio": f"{rel}/audio.wav",
                    "meta": f"{rel}/meta.npz",
                    "n_frames": n_frames,
                    "split": split,
                }
            )
            write_manifest(args.out, manifest)
    print(f"wrote {len(manifest.clips)} clips to {args.out}")
    return 0
