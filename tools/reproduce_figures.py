"""Measure the model's headline figures (docs/figures.md) in one command.

    python tools/reproduce_figures.py OUT                          # the bundled checkpoint: about 2.5 hours on 2 cores
    python tools/reproduce_figures.py OUT --checkpoint runs/demo   # a checkpoint or run folder of your own
    python tools/reproduce_figures.py OUT --data-st24 data/st24 --data-sp24 data/sp24   # data sets made before

The steps, each a command of its own printed before it runs:
  1. the real portraits and the espeak-ng sentence (tools/make_portraits.py);
  2. SynthTalk's classic and photo-style data sets, as the README's synth command makes them;
  3. a lip-sync expert for the LSE columns: the first stage of `--config demo` on st24;
  4. `s3d-fast eval` on both data sets' held-out identities (8 clips x 50 frames each);
  5. `s3d-fast eval --portraits` on the portraits.
Each step is skipped where its output is already complete, so a stopped run goes on where it
stopped. OUT/figures.md then holds each figure beside the target it is held to, and the
file it was read from. `--quick` shrinks every step (for the tests): its figures mean nothing.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Callable, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)  # run from a clone without installing
sys.path.insert(0, HERE)  # make_portraits, beside this file

import make_portraits  # noqa: E402

from s3d_fast.atomic import write_text  # noqa: E402

BUNDLED = os.path.join(ROOT, "s3d_fast", "assets", "demo", "checkpoint")
SYNTH_ST24 = ["--identities", "24", "--heldout", "4", "--clips", "2", "--seconds", "4", "--views", "2"]
SYNTH_QUICK = ["--identities", "2", "--heldout", "1", "--clips", "1", "--seconds", "1", "--views", "1"]


@dataclass
class Step:
    name: str
    done: str  # the file whose presence means the step is complete
    command: Optional[list[str]] = None  # an s3d-fast command's arguments
    call: Optional[Callable[[], None]] = None  # or a function of this tool


class StepFailed(Exception):
    pass


def run_step(step: Step) -> None:
    if step.call is not None:
        step.call()
        return
    shown = " ".join(["s3d-fast", *step.command])
    print(f"  $ {shown}", flush=True)
    if subprocess.run([sys.executable, "-m", "s3d_fast", *step.command, "--quiet"]).returncode != 0:
        raise StepFailed(f"this command failed: {shown}")


def plan(args) -> list[Step]:
    """The steps in order; with --quick each is shrunk (for the tests)."""
    out, quick = args.out, args.quick
    st24 = args.data_st24 or os.path.join(out, "data", "st24")
    sp24 = args.data_sp24 or os.path.join(out, "data", "sp24")
    speech, photos = os.path.join(out, "speech.wav"), os.path.join(out, "photos")
    expert = os.path.join(out, "expert")
    weights = os.path.join(expert, "syncnet.safetensors")
    synth = SYNTH_QUICK if quick else SYNTH_ST24
    expert_settings = ["--set", "train.sync_steps=20", "--set", "train.batch_size=2"] if quick else []
    heldout = ["--frames", "5", "--clips", "1", "--adapt-steps", "0"] if quick else ["--frames", "50"]
    portrait_settings = ["--adapt-steps", "0"] if quick else []
    model = ["--checkpoint", args.checkpoint]

    steps = [Step("portraits", speech, call=functools.partial(make_portraits.make_portraits, out))]
    if quick:  # the astronaut alone of the eight, and the sentence's first seconds
        quick_dir = os.path.join(out, "quick")
        shrink = functools.partial(_quick_inputs, photos, speech, quick_dir)
        steps.append(Step("quick inputs", os.path.join(quick_dir, "speech.wav"), call=shrink))
        photos, speech = os.path.join(quick_dir, "photos"), os.path.join(quick_dir, "speech.wav")
    if not args.data_st24:
        steps.append(Step("st24", os.path.join(st24, "manifest.json"), ["synth", "--out", st24, *synth]))
    if not args.data_sp24:
        steps.append(
            Step("sp24", os.path.join(sp24, "manifest.json"), ["synth", "--out", sp24, *synth, "--style", "photo"])
        )
    # Stage one of `--config demo` (its phases dropped), then a single generator step.
    train_expert = ["train", "--config", "demo", "--data", st24, "--out", expert, "--steps", "1"]
    train_expert += ["--set", "train.phases=[]", *expert_settings]
    steps.append(Step("lip-sync expert", weights, train_expert))
    for name, data in (("st24", st24), ("sp24", sp24)):
        folder = os.path.join(out, "eval", name)
        command = [
            "eval",
            *model,
            "--syncnet",
            weights,
            "--data",
            data,
            "--split",
            "heldout",
            *heldout,
            "--out",
            folder,
        ]
        steps.append(Step(f"eval {name}", os.path.join(folder, "metrics.json"), command))
    folder = os.path.join(out, "eval", "photos")
    command = ["eval", *model, "--portraits", photos, "--speech", speech, *portrait_settings, "--out", folder]
    steps.append(Step("eval photos", os.path.join(folder, "portraits.json"), command))
    return steps


QUICK_SECONDS = 2.0


def _quick_inputs(photos: str, speech: str, folder: str) -> None:
    import soundfile

    os.makedirs(os.path.join(folder, "photos"), exist_ok=True)
    shutil.copyfile(os.path.join(photos, "astronaut.png"), os.path.join(folder, "photos", "astronaut.png"))
    samples, rate = soundfile.read(speech, dtype="float32")
    with make_portraits.atomic_path(os.path.join(folder, "speech.wav")) as tmp:
        soundfile.write(tmp, samples[: int(QUICK_SECONDS * rate)], rate, format="WAV")


# ---- the figures -------------------------------------------------------------------------

SILENCED_NEAR_ZERO = 0.1  # "silenced near 0", read as |r| at most this
TURN_RANGE = 30.0  # the photo targets cover sources turned up to this many degrees


@dataclass
class Figure:
    what: str
    value: str
    target: str = ""
    met: Optional[bool] = None


def _fmt(x: float, digits: int = 2) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def heldout_figures(name: str, mean: dict) -> list[Figure]:
    """The held-out rows of one data set's ``metrics.json`` mean."""
    psnr, box, copy = mean.get("psnr"), mean.get("mouth_psnr"), mean.get("mouth_psnr_copy")
    r, silent = mean.get("mouth_corr"), mean.get("mouth_corr_silent")
    rows = [
        Figure(
            f"{name}: PSNR / SSIM",
            f"{_fmt(psnr)} / {_fmt(mean.get('ssim'), 3)}",
            ">= 24 dB",
            psnr is not None and psnr >= 24,
        ),
        Figure(
            f"{name}: mouth box PSNR (repeating the source)",
            f"{_fmt(box)} ({_fmt(copy)})",
            ">= 1 dB above repeating the source",
            None if box is None or copy is None else box >= copy + 1.0,
        ),
        Figure(
            f"{name}: mouth opening r / speech silenced",
            f"{_fmt(r, 3)} / {_fmt(silent, 3)}",
            f">= 0.7 / within {SILENCED_NEAR_ZERO} of 0",
            None if r is None or silent is None else (r >= 0.7 and abs(silent) <= SILENCED_NEAR_ZERO),
        ),
        Figure(f"{name}: novel view PSNR", _fmt(mean.get("view_psnr"))),
        Figure(
            f"{name}: identity distance, source / novel view (ground truth's own)",
            f"{_fmt(mean.get('identity_dist'), 3)} / {_fmt(mean.get('view_identity_dist'), 3)} "
            f"({_fmt(mean.get('identity_dist_gt'), 3)} / {_fmt(mean.get('view_identity_dist_gt'), 3)})",
        ),
    ]
    if mean.get("lse_d_ours") is not None:
        lse = [_fmt(mean.get(f"lse_{m}_{who}"), 3) for who in ("ours", "gt", "gt_shifted") for m in ("d", "c")]
        rows.insert(
            3, Figure(f"{name}: LSE-D / LSE-C (ground truth; shifted 1 s)", "{} / {} ({} / {}; {} / {})".format(*lse))
        )
    return rows


# (what, key in portraits.json, the target's limit, higher is better, digits)
PHOTO_TARGETS = [
    ("silent face PSNR against the photo, dB", "silent_face_psnr", 30.0, True, 2),
    ("upper face PSNR while speaking, dB", "upper_face_psnr", 30.0, True, 2),
    ("mouth r (inner lips) with the speech", "mouth_r", 0.55, True, 3),
    ("identity distance at the source camera", "identity_0", 0.45, False, 3),
    ("identity at 15 degrees towards the front", "identity_15_front", 0.45, False, 3),
    ("identity at 30 degrees towards the front", "identity_30_front", 0.5, False, 3),
    ("identity at 15 degrees away", "identity_15_away", 0.45, False, 3),
    ("identity at 30 degrees away", "identity_30_away", 0.5, False, 3),
    ("frames without a face", "frames_without_face", 0, False, 0),
    ("grid energy over the photo's", "grid_ratio", 2.0, False, 2),
    ("bake time, s", "bake_seconds", 60.0, False, 1),
]


def photo_figures(rows: list[dict]) -> list[Figure]:
    """Every target for real photos, from ``portraits.json``'s rows: the mean
    and the worst photo, and met where each photo turned at most TURN_RANGE meets it."""
    figures = []
    for what, key, limit, higher, digits in PHOTO_TARGETS:
        values = [float(r[key]) for r in rows]
        covered = [float(r[key]) for r in rows if abs(r["source_yaw"]) <= TURN_RANGE]
        passing = sum((v >= limit) if higher else (v <= limit) for v in covered)
        worst = min(values) if higher else max(values)
        mean = sum(values) / len(values)
        value = f"mean {_fmt(mean, digits)}, worst {_fmt(worst, digits)}; {passing} of {len(covered)} met"
        target = f"{'>=' if higher else '<='} {limit:g}"
        figures.append(Figure(f"photos: {what}", value, target, passing == len(covered) if covered else None))
    return figures


def figures_markdown(args, st24: dict, sp24: dict, portraits: list[dict]) -> str:
    figures = heldout_figures("st24 held out", st24) + heldout_figures("sp24 held out", sp24) + photo_figures(portraits)
    mark = {True: "yes", False: "**no**", None: ""}
    names = ", ".join(f"{r['portrait']} ({r['source_yaw']:.0f})" for r in portraits)
    lines = [
        "# Figures",
        "",
        f"Checkpoint `{args.checkpoint}`; made by `python tools/reproduce_figures.py` on "
        f"{time.strftime('%Y-%m-%d')}{' with --quick: these figures mean nothing' if args.quick else ''}.",
        f"Photos (source yaw in degrees): {names}. A photo target is met where every photo turned at most "
        f"{TURN_RANGE:g} degrees meets it.",
        "Read from eval/st24/metrics.json, eval/sp24/metrics.json and eval/photos/portraits.json.",
        "",
        "| figure | value | target | met |",
        "| --- | --- | --- | --- |",
    ]
    lines += [f"| {f.what} | {f.value} | {f.target} | {mark[f.met]} |" for f in figures]
    return "\n".join(lines) + "\n"


def write_figures(args) -> str:
    def read(*parts):
        with open(os.path.join(args.out, "eval", *parts)) as f:
            return json.load(f)

    text = figures_markdown(
        args,
        read("st24", "metrics.json")["mean"],
        read("sp24", "metrics.json")["mean"],
        read("photos", "portraits.json")["portraits"],
    )
    path = os.path.join(args.out, "figures.md")
    write_text(path, text)
    return path


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", help="folder for every step's output and figures.md")
    parser.add_argument("--checkpoint", default=BUNDLED, help="checkpoint or run folder (default: the bundled one)")
    parser.add_argument("--data-st24", help="a classic SynthTalk set made before (default: made under OUT/data)")
    parser.add_argument("--data-sp24", help="a photo-style SynthTalk set made before (default: made under OUT/data)")
    parser.add_argument(
        "--quick", action="store_true", help="every step shrunk, for the tests: the figures mean nothing"
    )
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if not os.path.exists(args.checkpoint):
        print(f"reproduce_figures: --checkpoint {args.checkpoint}: no such checkpoint", file=sys.stderr)
        return 1
    steps = plan(args)
    try:
        for n, step in enumerate(steps, start=1):
            if os.path.exists(step.done):
                print(f"[{n}/{len(steps)}] {step.name}: done before", flush=True)
                continue
            print(f"[{n}/{len(steps)}] {step.name}", flush=True)
            started = time.monotonic()
            run_step(step)
            print(f"[{n}/{len(steps)}] {step.name}: {time.monotonic() - started:.0f} s", flush=True)
        path = write_figures(args)
    except (StepFailed, make_portraits.S3DError, RuntimeError) as exc:
        print(f"reproduce_figures: {exc}", file=sys.stderr)
        return 1
    print(f"figures: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
