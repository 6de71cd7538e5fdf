"""The training run's metric log (``RUN/metrics.csv``) and its learning-curve PNG.

One CSV row per logged step: ``step, stage, wall_time`` then any metric columns, in the
order they first appeared. Columns may appear late (held-out metrics every M steps, a
new stage's losses): the file is then rewritten with the wider header, atomically, and
older rows get empty cells. Every row is flushed as it is written, so a crash or Ctrl-C
loses nothing already logged. On resume, rows past the checkpoint's step are dropped (they
belong to a future the resumed run will redo) and wall time continues from the last kept
row.
"""

from __future__ import annotations

import csv
import io
import math
import numbers
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Optional, Union

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .. import atomic
from ..errors import S3DError

__all__ = ["MetricLog", "read_metrics", "plot_curves", "metric_family", "METRICS_FILE"]

METRICS_FILE = "metrics.csv"
FIXED_COLUMNS = ("step", "stage", "wall_time")

PathLike = Union[str, os.PathLike]


class MetricLogError(S3DError):
    """A metrics file that cannot be read, or a row that cannot be logged."""


class MetricLog:
    """Append-only CSV of training metrics, flushed per row.

    ``resume_step=None`` starts a new log (an existing ``metrics.csv`` is replaced);
    ``resume_step=N`` keeps the rows with ``step <= N``, and every row of the stages named
    in ``keep_stages`` (a finished stage that counts its own steps, such as the lip-sync
    expert's), and appends after them.
    """

    def __init__(self, run_dir: PathLike, resume_step: Optional[int] = None, keep_stages: Sequence[str] = ()) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / METRICS_FILE
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.columns: list[str] = list(FIXED_COLUMNS)
        self._rows: list[dict[str, str]] = []
        self._wall_offset = 0.0
        if resume_step is not None and self.path.exists():
            columns, rows = _read_raw(self.path)
            for name in columns:
                if name not in self.columns:
                    self.columns.append(name)
            self._rows = [r for r in rows if r.get("stage") in keep_stages or _step_of(r, self.path) <= resume_step]
            walls = [float(r["wall_time"]) for r in self._rows if r.get("wall_time")]
            self._wall_offset = walls[-1] if walls else 0.0
        self._t0 = time.monotonic()
        self._file: Optional[io.TextIOWrapper] = None
        self._rewrite()

    # -- writing -------------------------------------------------------------------

    def log(self, step: int, stage: Optional[str] = None, **metrics: Any) -> dict[str, str]:
        """``log(120, "generator", loss=0.3, psnr=21.5)``; see :meth:`append`."""
        row: dict[str, Any] = {"step": step, **metrics}
        if stage is not None:
            row["stage"] = stage
        return self.append(row)

    def append(self, row: Mapping[str, Any]) -> dict[str, str]:
        """Write one row (must hold ``step``); numbers, 0-d tensors, strings, None.

        ``wall_time`` (seconds since the run began, across resumes) is filled in unless
        given. Returns the row as written.
        """
        if "step" not in row:
            raise MetricLogError(f"a metrics row needs a 'step', got keys {sorted(row)}")
        step = row["step"]
        if isinstance(step, bool) or not isinstance(step, numbers.Integral):
            raise MetricLogError(f"metrics 'step' must be an int, got {step!r}")
        cells = {k: _cell(k, v) for k, v in row.items()}
        if "wall_time" not in cells:
            cells["wall_time"] = _cell("wall_time", self._wall_offset + time.monotonic() - self._t0)
        new = [k for k in cells if k not in self.columns]
        self._rows.append(cells)
        if new:
            self.columns.extend(new)
            self._rewrite()  # a wider header: rewrite the whole file
        else:
            assert self._file is not None
            csv.DictWriter(self._file, self.columns, restval="", lineterminator="\n").writerow(cells)
            self._file.flush()
        return cells

    __call__ = append

    @property
    def rows(self) -> list[dict[str, str]]:
        """Every row as written (string cells), including those kept on resume."""
        return [dict(r) for r in self._rows]

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> MetricLog:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:  # a forgotten close() must not leak the handle
        try:
            self.close()
        except Exception:
            pass

    def _rewrite(self) -> None:
        self.close()
        buf = io.StringIO()
        writer = csv.DictWriter(buf, self.columns, restval="", lineterminator="\n")
        writer.writeheader()
        writer.writerows(self._rows)
        atomic.write_text(self.path, buf.getvalue(), durable=True)
        self._file = open(self.path, "a", encoding="utf-8", newline="")


def _cell(key: str, value: Any) -> str:
    if value is None:
        return ""
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 0) == 0:
        value = value.item()  # 0-d torch tensor / numpy scalar
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        return format(float(value), ".8g")
    if isinstance(value, str):
        return value
    raise MetricLogError(f"metric '{key}' must be a number, a 0-d tensor or a string, got {type(value).__name__}")


def _step_of(row: dict[str, str], path: Path) -> int:
    try:
        return int(row["step"])
    except (KeyError, TypeError, ValueError):
        raise MetricLogError(f"{path} is corrupt: a row has step {row.get('step')!r}") from None


def _read_raw(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    try:
        with open(path, encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f)
            rows = [dict(r) for r in reader]
            columns = list(reader.fieldnames or [])
    except FileNotFoundError:
        raise MetricLogError(f"metrics file not found: {path}") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise MetricLogError(f"cannot read metrics file {path}: {exc}") from None
    if columns and "step" not in columns:
        raise MetricLogError(f"{path} is not a metrics log: no 'step' column")
    # csv.DictReader puts surplus cells under None: a torn last line from a crash.
    rows = [r for r in rows if None not in r and r.get("step")]
    return columns, rows


# --------------------------------------------------------------------------- reading


def read_metrics(csv_path: PathLike) -> dict[str, Any]:
    """``{"step": [...], "stage": [...], "<metric>": [float or nan, ...]}`` column-wise.

    Non-numeric metric columns are left out.
    """
    path = Path(csv_path)
    columns, rows = _read_raw(path)
    out: dict[str, Any] = {"step": [_step_of(r, path) for r in rows], "stage": [r.get("stage", "") or "" for r in rows]}
    for name in columns:
        if name in ("step", "stage"):
            continue
        values = []
        numeric = True
        for r in rows:
            text = r.get(name, "")
            if text == "" or text is None:
                values.append(math.nan)
                continue
            try:
                values.append(float(text))
            except ValueError:
                numeric = False
                break
        if numeric:
            out[name] = values
    return out


def metric_family(name: str) -> str:
    """Which panel group a column belongs to: ``loss/photo`` -> ``loss``,
    ``eval/psnr`` -> ``eval``; un-prefixed names by their wording."""
    if "/" in name:
        return name.split("/", 1)[0]
    low = name.lower()
    if "loss" in low:
        return "loss"
    if low.startswith(("eval_", "val_", "heldout_", "test_")):
        return "eval"
    if low == "lr" or low.startswith("lr_") or low.endswith("_lr"):
        return "lr"
    return low


# --------------------------------------------------------------------------- plotting


def plot_curves(csv_path: PathLike, png_path: PathLike, *, smooth: float = 0.9) -> Path:
    """Draw the learning curves of a metrics CSV into a PNG (written atomically).

    Losses share one panel (log scale when positive; noisy series get an EMA-smoothed
    line over the raw one); every other metric (held-out PSNR, SSIM, sync, lr, steps/s)
    gets its own panel, grouped by family. x is the step; dashed lines mark stage changes.
    """
    # The Agg canvas directly, not pyplot: no global backend switch, no GUI, thread-safe.

    data = read_metrics(csv_path)
    steps = data["step"]
    metrics = [k for k in data if k not in ("step", "stage", "wall_time") and any(not math.isnan(v) for v in data[k])]
    panels: list[tuple[str, list[str]]] = []
    losses = [m for m in metrics if metric_family(m) == "loss"]
    if losses:
        panels.append(("losses", losses))
    others = sorted(
        (m for m in metrics if metric_family(m) != "loss"), key=lambda m: (metric_family(m) != "eval", metric_family(m))
    )
    panels.extend((m, [m]) for m in others)

    ncols = max(1, min(3, len(panels)))
    nrows = max(1, math.ceil(len(panels) / ncols))
    fig = Figure(figsize=(5.0 * ncols, 3.4 * nrows), dpi=100)
    FigureCanvasAgg(fig)
    if not panels:
        ax = fig.add_subplot(1, 1, 1)
        ax.text(0.5, 0.5, "no metrics logged yet", ha="center", va="center")
        ax.set_axis_off()
    boundaries = _stage_boundaries(steps, data["stage"])
    for i, (title, names) in enumerate(panels):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        for name in names:
            xs, ys = _finite(steps, data[name])
            label = name.split("/", 1)[1] if ("/" in name and len(names) > 1) else name
            dense = len(xs) > 30
            line = ax.plot(
                xs,
                ys,
                lw=1.0,
                alpha=0.35 if dense else 1.0,
                marker=None if dense else "o",
                ms=3,
                label=None if dense else label,
            )[0]
            if dense:
                ax.plot(xs, _ema(ys, smooth), lw=1.6, color=line.get_color(), label=label)
        positive = all(v > 0 for n in names for v in _finite(steps, data[n])[1])
        if title == "losses" and positive:
            ax.set_yscale("log")
        for step, stage in boundaries:
            ax.axvline(step, color="0.5", ls="--", lw=0.8)
            ax.annotate(
                stage,
                (step, 1.0),
                xycoords=("data", "axes fraction"),
                xytext=(2, -10),
                textcoords="offset points",
                fontsize=7,
                color="0.4",
            )
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("step")
        ax.grid(True, alpha=0.3)
        if len(names) > 1:
            ax.legend(fontsize=7)
    fig.tight_layout()

    out = Path(png_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic.atomic_path(out) as tmp:
        fig.savefig(tmp, format="png")
    return out


def _finite(xs: Sequence[int], ys: Sequence[float]) -> tuple[list[int], list[float]]:
    pairs = [(x, y) for x, y in zip(xs, ys) if math.isfinite(y)]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def _ema(ys: Sequence[float], beta: float) -> list[float]:
    """Bias-corrected exponential moving average (TensorBoard-style smoothing)."""
    out, avg = [], 0.0
    for i, y in enumerate(ys, start=1):
        avg = beta * avg + (1 - beta) * y
        out.append(avg / (1 - beta**i))
    return out


def _stage_boundaries(steps: Sequence[int], stages: Sequence[str]) -> list[tuple[int, str]]:
    out, last = [], None
    for step, stage in zip(steps, stages):
        if stage and stage != last:
            if last is not None:
                out.append((step, stage))
            last = stage
    return out
