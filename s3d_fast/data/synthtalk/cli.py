"""``s3d-fast synth``: write a SynthTalk data set (and optionally a contact sheet)."""

from __future__ import annotations


def add_arguments(parser) -> None:
    parser.add_argument("--out", required=True, help="output folder (created; re-running completes it)")
    parser.add_argument("--identities", type=int, default=4, help="number of identities (default 4)")
    parser.add_argument("--clips", type=int, default=2, help="clips per identity (default 2)")
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each clip in seconds (default 3)")
    parser.add_argument("--size", type=int, default=256, help="image resolution, even (default 256)")
    parser.add_argument("--views", type=int, default=2, help="extra free-view cameras per frame (default 2)")
    parser.add_argument("--seed", type=int, default=0, help="data set seed (default 0)")
    parser.add_argument(
        "--heldout",
        type=int,
        default=None,
        help="identities kept out of training (default: a fifth, at least 1 when there are 2 or more)",
    )
    parser.add_argument("--crf", type=int, default=16, help="H.264 quality, lower is better (default 16)")
    parser.add_argument(
        "--supersample",
        type=int,
        default=1,
        help="rays per pixel along each axis, 1-4: anti-aliasing at s^2 the cost (default 1)",
    )
    parser.add_argument(
        "--style",
        choices=("classic", "photo"),
        default="classic",
        help="classic: the original smooth-shaded heads; photo: hair volume, shoulders and clothes, textured "
        "scenes, pores, soft shadows, coloured light, head turns up to 45 degrees (default classic)",
    )
    parser.add_argument("--workers", type=int, default=None, help="rendering processes (default: one per CPU core)")
    parser.add_argument(
        "--contact-sheet", metavar="PNG", help="also write a contact sheet of identities and mouth shapes"
    )
    parser.add_argument("--overwrite", action="store_true", help="regenerate clips that already exist")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args) -> int:
    import os
    import time

    from ...atomic import check_output_file, output_folder
    from ..errors import DataError
    from .generate import SynthConfig, generate_dataset, identity_seed
    from .identity import sample_identity
    from .photo_identity import sample_photo_identity
    from .sheet import write_contact_sheet, write_photo_contact_sheet

    heldout = args.heldout
    if heldout is None:
        heldout = max(1, round(args.identities / 5)) if args.identities >= 2 else 0
    config = SynthConfig(
        identities=args.identities,
        clips=args.clips,
        seconds=args.seconds,
        size=args.size,
        views=args.views,
        seed=args.seed,
        heldout=heldout,
        crf=args.crf,
        supersample=args.supersample,
        style=args.style,
    )
    config.validate()
    workers = args.workers if args.workers is not None else (os.cpu_count() or 1)
    if not 1 <= workers <= 1024:
        raise DataError(f"--workers must be from 1 to 1024, got {workers}")
    if args.contact_sheet:
        check_output_file(args.contact_sheet)
    start = time.perf_counter()
    with output_folder(args.out):
        manifest = generate_dataset(
            args.out, config, overwrite=args.overwrite, progress=not args.quiet, workers=workers
        )
    elapsed = time.perf_counter() - start
    n_images = sum(c["n_frames"] * (1 + len(c.get("views", []))) for c in manifest.clips)
    print(
        f"wrote {len(manifest.clips)} clips of {len(manifest.identities)} identities "
        f"({n_images} images at {config.size}^2) to {args.out} in {elapsed:.1f} s"
    )
    if args.contact_sheet:
        if config.style == "photo":
            looks = [sample_photo_identity(identity_seed(config, i)) for i in range(min(config.identities, 8))]
            write_photo_contact_sheet(args.contact_sheet, looks, supersample=2)
        else:
            idents = [sample_identity(identity_seed(config, i)) for i in range(min(config.identities, 8))]
            write_contact_sheet(args.contact_sheet, idents, supersample=2)
        print(f"contact sheet: {args.contact_sheet}")
    return 0
