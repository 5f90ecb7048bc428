"""``anas-export onnx``: bad input gives one stderr line, a non-zero exit and no file; a genome file exports."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from export_fixtures import spread_weights

import anas_zoo
from anas_zoo.cli.export import main
from anas_zoo.static import StaticNet
from anas_zoo.store import save_weights


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = main(["onnx", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def _error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if not line.startswith("warning:")]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "attentivenas_a9"], "unknown model 'attentivenas_a9'; did you mean attentivenas_a"),
        (["--model", "attentivenas_a0", "--opset", "7"], "opset 7 is not supported; choose 13.."),
        (["--model", "attentivenas_a0", "--opset", "40"], "opset 40 is not supported"),
        (["--model", "attentivenas_a0", "--resolution", "16"], "resolution 16 is not possible"),
        (["--model", "attentivenas_a0", "--resolution", "4096"], "resolution 4096 is not possible"),
        (["--model", "attentivenas_a0", "--precision", "int8"], "int8 needs calibration images"),
        (["--model", "attentivenas_a0", "--precision", "int8", "--calib-data", "{tmp}/missing"], "does not exist"),
        (["--model", "attentivenas_a0", "--batch", "0"], "batch must be a positive integer"),
        (["--model", "attentivenas_a0", "--pretrained"], "no local weights for 'attentivenas_a0.in1k'"),
        (["--model", "attentivenas_a0", "--checkpoint", "{tmp}/none.json"], "checkpoint '"),
        (["--arch", "{tmp}/missing.json"], "genome file '"),
    ],
)
def test_bad_input_is_one_line_nonzero_and_leaves_no_file(tmp_path, capsys, args, message):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    argv = [a.replace("{tmp}", str(tmp_path)) for a in args]
    code, out, err = run_cli(capsys, *argv, "--output", out_dir / "m.onnx")
    assert code == 1 and out == ""
    assert message in _error_line(err)
    assert list(out_dir.iterdir()) == []


def test_unwritable_or_misnamed_output(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    code, _, err = run_cli(capsys, "--model", "attentivenas_a0", "--output", blocker / "m.onnx")
    assert code == 1 and "cannot create the folder of output" in _error_line(err)
    code, _, err = run_cli(capsys, "--model", "attentivenas_a0", "--output", tmp_path / "m.bin")
    assert code == 1 and "must end in .onnx" in _error_line(err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_usage_errors_exit_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["onnx", "--model", "attentivenas_a0", "--batch", "2", "--dynamic-batch", "--output", str(tmp_path / "m.onnx")])
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        main(["onnx", "--output", str(tmp_path / "m.onnx")])  # neither --model nor --arch
    assert info.value.code == 2


def test_console_entry_point_reports_unknown_model(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "anas_zoo.cli.export", "onnx", "--model", "attentivenas_a7", "--output",
         str(tmp_path / "m.onnx")], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 1 and result.stdout == ""
    assert "did you mean" in _error_line(result.stderr)


def test_registered_model_json_report_without_check(tmp_path, capsys):
    code, out, err = run_cli(capsys, "--model", "attentivenas_a0", "--exporter", "torchscript", "--no-check",
                             "--json", "--output", tmp_path / "a0.onnx")
    assert code == 0
    report = json.loads(out)
    assert report["validation"] is None and report["exporter"] == "torchscript"
    assert report["metadata"]["weights"] == "random-init"
    assert "warning: no local pretrained weights" in err
    assert (tmp_path / "a0.onnx").is_file() and json.loads((tmp_path / "a0.json").read_text())["sha256"]


def test_genome_file_with_checkpoint_exports_and_a_failed_check_exits_1(tmp_path, capsys):
    space = anas_zoo.get_space("cifar10")
    model = spread_weights(StaticNet(space.min_arch(), space), seed=5)
    record = {"name": "cifar-min", "tag": "test", "genome": model.arch.to_dict(), "space": "cifar10",
              "num_classes": 10, "license": "apache-2.0"}
    weights = save_weights(model, record, tmp_path / "weights", "cifar-min.test")
    genome = tmp_path / "cifar-min.json"
    genome.write_text(json.dumps({"genome": model.arch.to_dict(), "space": "cifar10", "num_classes": 10}))
    common = ["--arch", genome, "--checkpoint", weights, "--exporter", "torchscript", "--output", tmp_path / "o/m.onnx"]

    code, out, err = run_cli(capsys, *common, "--atol", "1e-12")
    assert code == 1 and "ONNX Runtime differs from PyTorch" in _error_line(err)
    assert list((tmp_path / "o").iterdir()) == []

    code, out, err = run_cli(capsys, *common)
    assert code == 0 and "wrote" in out and "max|diff|" in out
    sidecar = json.loads((tmp_path / "o" / "m.json").read_text())
    assert sidecar["passed"] is True and sidecar["model"] == "cifar-min"
    assert sidecar["metadata"]["license"] == "apache-2.0" and "checkpoint cifar-min.test.json" in sidecar["metadata"]["weights"]
    assert sidecar["metadata"]["space"] == "cifar10"


@pytest.mark.parametrize(
    ("command", "args", "message"),
    [
        ("openvino", ["--precision", "int8"], "int8 needs calibration images"),
        ("openvino", ["--precision", "int4"], None),
        ("executorch", ["--precision", "int8"], "int8 needs calibration images"),
        ("executorch", ["--precision", "fp16"], None),
        ("executorch", ["--resolution", "2"], "resolution 2 is not possible"),
    ],
)
def test_openvino_and_executorch_share_the_one_line_errors(tmp_path, capsys, command, args, message):
    output = tmp_path / ("ir" if command == "openvino" else "m.pte")
    argv = [command, "--model", "attentivenas_cifar10_a0", *args, "--output", str(output)]
    if message is None:  # a precision the runtime does not offer is a usage error
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2
        return
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 1 and out == "" and message in _error_line(err)
    assert not output.exists() or list(output.iterdir()) == []


def test_misnamed_outputs_of_the_new_subcommands(tmp_path, capsys):
    (tmp_path / "file").write_text("not a folder")
    assert main(["openvino", "--model", "attentivenas_a0", "--output", str(tmp_path / "file")]) == 1
    assert "is a file; give a folder" in _error_line(capsys.readouterr()[1])
    assert main(["executorch", "--model", "attentivenas_a0", "--output", str(tmp_path / "m.onnx")]) == 1
    assert "must end in .pte" in _error_line(capsys.readouterr()[1])


@pytest.mark.parametrize(("command", "module"), [("openvino", "openvino"), ("executorch", "executorch")])
def test_a_missing_runtime_names_the_extra_to_install(tmp_path, capsys, monkeypatch, command, module):
    monkeypatch.setitem(sys.modules, module, None)  # makes `import openvino` / `import executorch` fail
    output = tmp_path / ("ir" if command == "openvino" else "m.pte")
    code = main([command, "--model", "attentivenas_cifar10_a0", "--output", str(output)])
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    assert _error_line(err) == f'error: {module} is not installed: pip install "anas_zoo[{module}]" adds it'


def test_openvino_json_report_without_check(tmp_path, capsys):
    pytest.importorskip("openvino")
    code = main(["openvino", "--model", "attentivenas_cifar10_a0", "--no-check", "--json", "--output",
                 str(tmp_path / "ir")])
    out, _ = capsys.readouterr()
    assert code == 0
    report = json.loads(out)
    assert report["validation"] is None and report["passed"] is None and report["format"] == "openvino"
    assert sorted(p.name for p in (tmp_path / "ir").iterdir()) == ["model.bin", "model.json", "model.xml"]
    assert json.loads((tmp_path / "ir" / "model.json").read_text())["sha256"] == report["sha256"]

