"""benchmarks/training_curves.py: per-epoch held-out top-1 of several runs, side by side, from their metrics logs."""

import json
import subprocess
import sys

from bench_helpers import BENCHMARKS, load_benchmark

SCRIPT = BENCHMARKS / "training_curves.py"


def _write_log(path, evals, losses):
    lines = [{"event": "start", "config": {}}]
    lines += [{"step": s, "epoch": s / 10, "loss": 4 * v, "loss_max": v} for s, v in losses]
    lines += [{"event": "eval", "step": round(10 * e), "epoch": e, "max_top1": mx, "min_top1": mn,
               "max_samples": 2000, "min_samples": 2000} for e, mx, mn in evals]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def test_runs_are_tabulated_by_epoch_and_plotted(tmp_path):
    old = _write_log(tmp_path / "old.jsonl", [(1.0, 0.459, 0.4055), (2.0, 0.607, 0.548)], [(10, 2.0), (20, 1.5)])
    new = _write_log(tmp_path / "new.jsonl", [(1.0, 0.564, 0.5065)], [(10, 1.8)])
    done = subprocess.run([sys.executable, str(SCRIPT), f"old={old}", f"new={new}", "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = (tmp_path / "out" / "curves.md").read_text().splitlines()
    assert lines[0] == "| epoch | old largest | old smallest | new largest | new smallest |"
    assert lines[2:] == ["| 1 | 45.90 | 40.55 | 56.40 | 50.65 |", "| 2 | 60.70 | 54.80 | – | – |"]
    assert done.stdout.splitlines() == lines
    assert (tmp_path / "out" / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_missing_log_is_a_one_line_error(tmp_path):
    done = subprocess.run([sys.executable, str(SCRIPT), f"x={tmp_path / 'none.jsonl'}", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and done.stderr.count("\n") == 1 and "is not NAME=PATH" in done.stderr


def test_the_loss_curve_is_a_trailing_mean():
    module = load_benchmark("training_curves")
    assert module._smooth([1.0, 3.0, 5.0], window=2) == [1.0, 2.0, 4.0]
