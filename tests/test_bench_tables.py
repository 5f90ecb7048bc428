"""Pareto tables of latency runs: grouping that never mixes settings, and the written tables/plot."""

import csv

from anas_zoo.bench.stats import summarize
from anas_zoo.bench.tables import fastest_runtimes, pareto_table, to_markdown, write_pareto


def _run(name, latency, accuracy, backend="ort", batch=1, status="ok", dataset="imagenet-1k", precision="fp32",
         threads=2):
    samples = [latency * f for f in (0.98, 1.0, 1.02)]
    model = {"name": name, "genome": {}, "space": "attentivenas", "num_classes": 1000, "resolution": 192,
             "macs": int(latency * 1e7), "params": 1_000_000, "accuracy": accuracy,
             "accuracy_source": "reported" if accuracy is not None else None,
             "accuracy_dataset": dataset if accuracy is not None else None}
    return {"job": {"model": model, "backend": backend, "precision": precision, "batch": batch, "threads": threads,
                    "device": "cpu"},
            "device_name": "test cpu", "scenario": "latency" if batch == 1 else "throughput", "status": status,
            "summary": summarize(samples, batch) if status == "ok" else None, "cold_start": {"session_s": 0.1},
            "samples_ms": samples}


def test_table_groups_by_setting_and_skips_failed_runs():
    runs = [
        _run("fast", 5.0, 70.0), _run("slow", 9.0, 75.0), _run("bad", 10.0, 71.0),
        # in its own group "bad" would be on the front: the torch and batch-8 groups must not see ort/batch-1 rows
        _run("bad", 10.0, 71.0, backend="torch"),
        _run("fast", 40.0, 70.0, batch=8), _run("slow", 30.0, 75.0, batch=8),
        _run("broken", 1.0, 99.0, status="error"),
    ]
    rows = pareto_table(runs, fvcore=False)
    assert len(rows) == 6 and all(r["model"] != "broken" for r in rows)
    front = {(r["backend"], r["batch"], r["model"]): r["on_front"] for r in rows}
    assert front[("ort", 1, "fast")] and front[("ort", 1, "slow")] and not front[("ort", 1, "bad")]
    assert front[("torch", 1, "bad")]
    assert front[("ort", 8, "slow")] and not front[("ort", 8, "fast")]
    md = to_markdown(rows)
    assert len(_front_headings(md)) == 3 and "**slow**" in md and "batch 8 (throughput)" in md


def test_top1_on_different_datasets_never_shares_a_front():
    # a CIFAR-10 model faster and more accurate (on its own dataset) must not dominate an ImageNet model
    rows = pareto_table([_run("imagenet", 5.0, 80.0), _run("cifar", 2.0, 90.0, dataset="cifar10")], fvcore=False)
    assert all(r["on_front"] for r in rows) and {r["accuracy_dataset"] for r in rows} == {"imagenet-1k", "cifar10"}
    md = to_markdown(rows)
    assert len(_front_headings(md)) == 2 and "top-1 on cifar10" in md and "top-1 on imagenet-1k" in md


def _front_headings(markdown: str) -> list[str]:
    return [line for line in markdown.splitlines() if line.startswith("## ") and "Fastest" not in line]


def test_fronts_per_runtime_and_precision_and_the_fastest_runtime_of_each_model():
    runs = [_run("small", 5.0, 70.0, backend="ort"), _run("big", 9.0, 75.0, backend="ort"),
            _run("small", 3.0, 70.0, backend="openvino"), _run("big", 10.0, 75.0, backend="openvino"),
            _run("small", 2.0, 69.0, backend="openvino", precision="int8"),
            _run("small", 4.0, 70.0, backend="executorch"),
            # another thread count is another setting: never compared with the 2-thread runs
            _run("small", 1.0, 70.0, backend="torch", threads=8)]
    rows = pareto_table(runs, fvcore=False)
    groups = {(r["backend"], r["precision"], r["threads"]) for r in rows}
    assert groups == {("ort", "fp32", 2), ("openvino", "fp32", 2), ("openvino", "int8", 2), ("executorch", "fp32", 2),
                      ("torch", "fp32", 8)}
    fastest = {(f["model"], f["threads"]): f for f in fastest_runtimes(rows)}
    assert fastest[("small", 2)]["runtime"] == "openvino int8" and fastest[("small", 2)]["p50_ms"] == 2.0
    assert list(fastest[("small", 2)]["p50_ms_by_runtime"]) == ["ort fp32", "openvino fp32", "openvino int8",
                                                                 "executorch fp32"]
    assert fastest[("big", 2)]["runtime"] == "ort fp32" and fastest[("small", 8)]["runtime"] == "torch fp32"
    md = to_markdown(rows)
    assert len(_front_headings(md)) == 5
    assert "| small | **openvino int8** | 2.00 | 5.00 | 3.00 | 2.00 | 4.00 |" in md
    assert "| big | **ort fp32** | 9.00 | 9.00 | 10.00 | – | – |" in md
    assert md.index("## Fastest runtime per model") < md.index("## test cpu")
    assert "float32 weights' figure in every table, int8 and fp16 included" in md  # int8 tables say whose top-1


def test_written_files(tmp_path):
    rows = pareto_table([_run("fast", 5.0, 70.0), _run("slow", 9.0, 75.0), _run("nameless", 3.0, None)],
                        fvcore=False)
    paths = write_pareto(rows, tmp_path)
    with open(paths["csv"]) as f:
        table = list(csv.DictReader(f))
    assert [r["model"] for r in table] == ["nameless", "fast", "slow"]
    assert [r["on_front"] for r in table] == ["False", "True", "True"]
    assert table[1]["accuracy_source"] == "reported"
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| **fast** |" in paths["markdown"].read_text()


def test_fvcore_column_matches_the_analytic_count_on_a_real_model():
    from anas_zoo.flops import count
    from anas_zoo.space import get_space

    arch = get_space("attentivenas").min_arch()
    run = _run("min", 5.0, 70.0)
    macs, params = count(arch, "attentivenas", 10, 32)
    run["job"]["model"].update(genome=arch.to_dict(), num_classes=10, resolution=32, macs=macs, params=params)
    row, = pareto_table([run], fvcore=True)
    assert row["macs_fvcore"] == row["macs"]
