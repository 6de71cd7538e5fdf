"""What ``s3d-fast eval`` writes: metrics.json, metrics.md (a markdown table) and grid.png
(source / ground truth / ours / correlation heat map), each to a temporary name first
and then renamed, so a reader never sees half a file."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .. import atomic

# (column header, key in a row, format)
COLUMNS = [
    ("PSNR", "psnr", "{:.2f}"),
    ("SSIM", "ssim", "{:.3f}"),
    ("mouth PSNR", "mouth_psnr", "{:.2f}"),
    ("mouth SSIM", "mouth_ssim", "{:.3f}"),
    ("PSNR copy", "psnr_copy", "{:.2f}"),
    ("mouth PSNR copy", "mouth_psnr_copy", "{:.2f}"),
    ("LMD px", "lmd", "{:.2f}"),
    ("LMD rule on GT", "lmd_rule_on_gt", "{:.2f}"),
    ("mouth r", "mouth_corr", "{:.3f}"),
    ("mouth r silent", "mouth_corr_silent", "{:.3f}"),
    ("mouth r GT", "mouth_corr_gt", "{:.3f}"),
    ("LSE-D ours", "lse_d_ours", "{:.3f}"),
    ("LSE-C ours", "lse_c_ours", "{:.3f}"),
    ("LSE-D GT", "lse_d_gt", "{:.3f}"),
    ("LSE-C GT", "lse_c_gt", "{:.3f}"),
    ("LSE-D GT+1s", "lse_d_gt_shifted", "{:.3f}"),
    ("LSE-C GT+1s", "lse_c_gt_shifted", "{:.3f}"),
    ("view PSNR", "view_psnr", "{:.2f}"),
    ("view SSIM", "view_ssim", "{:.3f}"),
    ("identity", "identity_dist", "{:.3f}"),
    ("identity GT", "identity_dist_gt", "{:.3f}"),
    ("view identity", "view_identity_dist", "{:.3f}"),
    ("view identity GT", "view_identity_dist_gt", "{:.3f}"),
    ("no face", "identity_no_face", "{:.0f}"),
    ("identity between", "identity_between", "{:.3f}"),
    ("fps", "fps", "{:.2f}"),
    ("fps training-style", "training_fps", "{:.2f}"),
    ("fps baked", "baked_fps", "{:.2f}"),
]


def _cell(row: dict, key: str, fmt: str) -> str:
    v = row.get(key)
    if v is None:
        return "-"
    if isinstance(v, float) and math.isinf(v):
        return "inf"
    if isinstance(v, float) and math.isnan(v):
        return "n/a"
    return fmt.format(v)


def format_table(result: dict) -> str:
    """A markdown table: one row per clip, then the mean (columns nobody filled are left out)."""
    rows = result["clips"] + [dict(result["mean"], clip="**mean**")]
    cols = [c for c in COLUMNS if any(r.get(c[1]) is not None for r in rows)]
    lines = [
        "| clip | " + " | ".join(c[0] for c in cols) + " |",
        "|---|" + "---|" * len(cols),
    ]
    for r in rows:
        lines.append(f"| {r['clip']} | " + " | ".join(_cell(r, k, f) for _, k, f in cols) + " |")
    return "\n".join(lines)


def _json_safe(x):
    """JSON has no inf / NaN: write them as strings "inf" / "nan"."""
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        x = float(x)
        if math.isnan(x):
            return "nan"
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
    return x


def _heat_overlay(frame: np.ndarray, score: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """The correlation score (r x r), mapped [lo, hi] -> [0, 1], as a colour map blended
    over a frame (H, W, 3) float."""

    s = torch.as_tensor(score, dtype=torch.float32)[None, None]
    s = F.interpolate(s, size=frame.shape[:2], mode="bilinear", align_corners=False)[0, 0].numpy()
    s = (s - lo) / (hi - lo) if hi > lo else np.zeros_like(s)
    heat = colormaps["jet"](s)[..., :3]
    return 0.5 * frame + 0.5 * heat


def grid_image(entries: list[dict]) -> np.ndarray:
    """Per clip three rows: [source | ground truth frames], [blank | ours], [blank | heat
    map over ours]. Returns (H, W, 3) float in [0, 1]."""
    tiles_rows = []
    for e in entries:
        src = e["source"].astype(np.float32) / 255.0
        H, W = src.shape[:2]
        gt = [f.astype(np.float32) / 255.0 for f in e["gt"]]
        ours = [o.permute(1, 2, 0).numpy() for o in e["ours"]]
        # One colour scale per clip, so frames can be compared with each other.
        lo, hi = float(e["score"].min()), float(e["score"].max())
        heat = [_heat_overlay(o, s.numpy(), lo, hi) for o, s in zip(ours, e["score"])]
        blank = np.ones((H, W, 3), np.float32)
        for first, row in ((src, gt), (blank, ours), (blank, heat)):
            tiles_rows.append(np.concatenate([first] + list(row), 1))
    width = max(t.shape[1] for t in tiles_rows)
    tiles_rows = [np.pad(t, ((0, 0), (0, width - t.shape[1]), (0, 0)), constant_values=1.0) for t in tiles_rows]
    return np.clip(np.concatenate(tiles_rows, 0), 0, 1)


def write_grid(path: Path, entries: list[dict], names: list[str]) -> None:

    img = grid_image(entries)
    H = entries[0]["source"].shape[0]
    scale = max(1.0, 128.0 / H)  # small frames are drawn larger so the labels fit
    fig = Figure(figsize=(img.shape[1] * scale / 100 + 1.6, img.shape[0] * scale / 100 + 0.4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_axes(
        [1.5 / (img.shape[1] * scale / 100 + 1.6), 0.02, 1 - 1.55 / (img.shape[1] * scale / 100 + 1.6), 0.9]
    )
    ax.imshow(img, interpolation="nearest")
    ax.set_xticks([H / 2 + i * H for i in range(img.shape[1] // H)])
    ax.set_xticklabels(["source"] + [f"frame {p}" for p in entries[0]["picks"]], fontsize=8)
    ax.xaxis.tick_top()
    labels = []
    for n in names:
        labels += [f"{n}\nground truth", "ours", "heat map (score)"]
    ax.set_yticks([H / 2 + i * H for i in range(len(labels))])
    ax.set_yticklabels(labels, fontsize=8)
    with atomic.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")


def write_outputs(out: Path, result: dict, grid_entries: list[dict], grid_names: list[str]) -> None:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic.write_text(out / "metrics.json", json.dumps(_json_safe(result), indent=2))
    header = (
        f"# s3d-fast eval: step {result['step']}, split {result['split']}, {result['renderer']} renderer\n\n"
        f"checkpoint `{result['checkpoint']}`, data `{result['data']}`, device {result['device']}\n\n"
    )
    notes = "".join(f"\nNote: {n}\n" for n in result.get("notes", []))
    atomic.write_text(out / "metrics.md", header + format_table(result) + "\n" + notes)
    if grid_entries:
        write_grid(out / "grid.png", grid_entries, grid_names)
