import json
import subprocess
import sys

import pytest


def cli(*args):
    return subprocess.run([sys.executable, "-m", "anas_zoo.cli.zoo", *args], capture_output=True, text=True)


def test_info_json_shows_macs_and_genome_of_a0():
    out = cli("info", "attentivenas_a0", "--json")
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert info["macs"] / 1e6 == pytest.approx(203.39, abs=0.05)
    assert info["genome"] == {
        "resolution": 192,
        "width": [16, 16, 24, 32, 64, 112, 192, 216, 1792],
        "depth": [1, 3, 3, 3, 3, 3, 1],
        "kernel_size": [3, 3, 3, 3, 3, 3, 3],
        "expand_ratio": [1, 4, 4, 4, 4, 6, 6],
    }
    assert info["weights"][0]["license"] == "cc-by-nc-4.0"
    assert info["weights"][0]["available"] is False


def test_list_json_is_one_document():
    out = cli("list", "attentivenas_*", "--json")
    assert out.returncode == 0
    assert [m["name"] for m in json.loads(out.stdout)] == [f"attentivenas_a{i}" for i in range(7)]


def test_unknown_model_is_one_line_on_stderr_and_exit_1():
    out = cli("info", "attentivenas_a9")
    assert out.returncode == 1
    assert out.stdout == ""
    assert out.stderr.count("\n") == 1 and "did you mean attentivenas_a6" in out.stderr


def test_bad_usage_exits_2():
    assert cli("frobnicate").returncode == 2


def test_demo_builds_and_runs_every_paper_model():
    out = cli("demo", "--json")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert [r["name"] for r in rows] == [f"attentivenas_a{i}" for i in range(7)]
    assert all(r["output_shape"] == [1, 1000] for r in rows)
