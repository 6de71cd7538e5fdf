"""Metric CSV log (growing header, resume) and the learning-curve PNG."""

import csv
import math
import os

import numpy as np
import pytest
import torch
from PIL import Image

from s3d_fast.errors import S3DError
from s3d_fast.training.metric_log import MetricLog, metric_family, plot_curves, read_metrics


def _read(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def test_rows_are_flushed_and_header_grows(tmp_path):
    log = MetricLog(tmp_path)
    log.log(1, "sync", loss_sync=0.9)
    # Flushed: another reader sees the row while the log is still open.
    assert _read(tmp_path / "metrics.csv") == [
        ["step", "stage", "wall_time", "loss_sync"],
        ["1", "sync", _read(tmp_path / "metrics.csv")[1][2], "0.9"],
    ]
    log.append({"step": 2, "stage": "sync", "loss_sync": torch.tensor(0.5)})
    log.log(3, "generator", **{"loss/photo": 0.25, "loss/sync": np.float32(0.125)})
    log.log(3, "generator", **{"eval/psnr": 18.5, "eval/ok": True, "note": "a,b"})
    rows = _read(tmp_path / "metrics.csv")
    assert rows[0] == [
        "step",
        "stage",
        "wall_time",
        "loss_sync",
        "loss/photo",
        "loss/sync",
        "eval/psnr",
        "eval/ok",
        "note",
    ]
    assert [r[0] for r in rows[1:]] == ["1", "2", "3", "3"]
    assert rows[2][3] == "0.5" and rows[3][3] == ""  # older/other rows: empty cells
    assert rows[4][6:] == ["18.5", "1", "a,b"]
    walls = [float(r[2]) for r in rows[1:]]
    assert walls == sorted(walls) and walls[0] >= 0
    assert (tmp_path / "metrics.csv").read_bytes().count(b"\r") == 0
    log.close()
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")]


def test_resume_drops_future_rows_and_continues_wall_time(tmp_path):
    with MetricLog(tmp_path) as log:
        for step in range(1, 6):
            log.append({"step": step, "loss": 1.0 / step, "wall_time": 10.0 * step})
        log.log(5, eval_psnr=20.0, wall_time=50.0)
    with MetricLog(tmp_path, resume_step=3) as log:
        assert [r["step"] for r in log.rows] == ["1", "2", "3"]
        log.log(4, loss=0.3)
    rows = _read(tmp_path / "metrics.csv")
    assert rows[0] == ["step", "stage", "wall_time", "loss", "eval_psnr"]  # header kept
    assert [r[0] for r in rows[1:]] == ["1", "2", "3", "4"]
    assert 30.0 <= float(rows[4][2]) < 40.0  # wall time continues from the last kept row
    assert rows[4][3] == "0.3"
    # A fresh run (no resume step) replaces the old log.
    with MetricLog(tmp_path) as log:
        log.log(1, loss=2.0)
    assert [r[0] for r in _read(tmp_path / "metrics.csv")[1:]] == ["1"]


def test_bad_rows_and_files(tmp_path):
    log = MetricLog(tmp_path)
    with pytest.raises(S3DError, match="needs a 'step'"):
        log.append({"loss": 1.0})
    with pytest.raises(S3DError, match="'step' must be an int"):
        log.log(1.5, loss=1.0)
    with pytest.raises(S3DError, match="metric 'x' must be a number"):
        log.log(1, x=[1, 2])
    log.close()
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "metrics.csv").write_text("a,b\n1,2\n")
    with pytest.raises(S3DError, match="is not a metrics log: no 'step' column"):
        MetricLog(tmp_path / "other", resume_step=1)
    with pytest.raises(S3DError, match="metrics file not found"):
        read_metrics(tmp_path / "missing.csv")


def test_read_metrics_and_families(tmp_path):
    with MetricLog(tmp_path) as log:
        log.log(1, "a", loss=1.0, note="hi")
        log.log(2, "a", loss=0.5, eval_psnr=20.0)
    data = read_metrics(tmp_path / "metrics.csv")
    assert data["step"] == [1, 2] and data["stage"] == ["a", "a"]
    assert data["loss"] == [1.0, 0.5] and math.isnan(data["eval_psnr"][0])
    assert "note" not in data  # non-numeric columns are left out
    assert [metric_family(n) for n in ("loss/photo", "eval/psnr", "loss_sync", "val_ssim", "lr", "steps_per_s")] == [
        "loss",
        "eval",
        "loss",
        "eval",
        "lr",
        "steps_per_s",
    ]


def test_plot_curves_writes_a_png_atomically(tmp_path):
    with MetricLog(tmp_path) as log:
        rng = np.random.default_rng(0)
        for step in range(1, 81):
            stage = "sync" if step <= 20 else "generator"
            row = {"lr": 1e-3}
            if stage == "sync":
                row["loss/sync_disc"] = 1.0 / step + 0.05 * rng.random()
            else:
                row["loss/photo"] = 1.0 / step + 0.05 * rng.random()
                row["loss/deform"] = 1e-4 * step
            if step % 20 == 0:
                row["eval/psnr"] = 15 + step / 10
                row["eval/ssim"] = 0.5 + step / 400
            log.log(step, stage, **row)
    png = tmp_path / "plots" / "curves.png"
    assert plot_curves(tmp_path / "metrics.csv", png) == png
    img = np.asarray(Image.open(png))
    assert img.shape[0] > 300 and img.shape[1] > 800  # 4 panels: losses, psnr, ssim, lr
    assert img.std() > 10  # something was drawn
    assert os.listdir(png.parent) == ["curves.png"]
    # Redrawing replaces it; an empty log gives a placeholder, not an error.
    MetricLog(tmp_path / "empty").close()
    plot_curves(tmp_path / "empty" / "metrics.csv", png)
    assert Image.open(png).size[0] > 100


def test_plot_does_not_switch_the_pyplot_backend(tmp_path):
    import matplotlib

    before = matplotlib.get_backend()
    with MetricLog(tmp_path) as log:
        log.log(1, loss=1.0)
    plot_curves(tmp_path / "metrics.csv", tmp_path / "c.png")
    assert matplotlib.get_backend() == before
