"""How close ONNX Runtime fp32 gets to this CPU's physical limit: achieved GMAC/s vs an fp32 peak estimate.

    python benchmarks/peak_gmacs.py benchmarks/results/xeon_2core_kvm

Reads OUT/results.csv and OUT/environment.json written by run_latency.py. Achieved GMAC/s =
MACs × batch / p50 latency. The peak is cores × FMA units × fp32 SIMD lanes × clock for the cores
the run used (its intra-op threads); every assumption behind it is printed.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

from anas_zoo.bench.environment import fp32_peak_estimate
from anas_zoo.cli.common import EXIT_OK, print_json, run


def achieved(rows: list[dict], env: dict, backend: str = "ort", precision: str = "fp32") -> list[dict]:
    """Achieved GMAC/s and % of the peak for every successful (backend, precision) row."""
    out = []
    for row in rows:
        if row["backend"] != backend or row["precision"] != precision or row["status"] != "ok":
            continue
        threads, batch, p50 = int(row["threads"]), int(row["batch"]), float(row["p50_ms"])
        gmacs = int(row["macs"]) * batch / (p50 / 1000.0) / 1e9
        peak = fp32_peak_estimate(env, cores=threads)["peak_gmacs_per_s"]
        out.append({"model": row["model"], "batch": batch, "threads": threads, "macs": int(row["macs"]),
                    "p50_ms": p50, "cv": float(row["cv"]), "achieved_gmacs_per_s": gmacs, "peak_gmacs_per_s": peak,
                    "percent_of_peak": 100.0 * gmacs / peak if peak else None})
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="peak_gmacs.py", description=__doc__.split("\n\n")[0])
    p.add_argument("results", help="a run_latency.py output folder")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    args = p.parse_args(argv)

    def body() -> int:
        folder = Path(args.results)
        with open(folder / "results.csv") as f:
            rows = list(csv.DictReader(f))
        env = json.loads((folder / "environment.json").read_text())
        table = achieved(rows, env)
        if not table:
            raise ValueError(f"{folder}/results.csv has no successful ort fp32 rows; run run_latency.py "
                             "with --backends ort --precision fp32 first")
        peaks = {t: fp32_peak_estimate(env, cores=t) for t in sorted({r["threads"] for r in table})}
        if args.json:
            print_json({"rows": table, "peaks": {str(k): v for k, v in peaks.items()}})
            return EXIT_OK
        print(f"CPU: {env['cpu']['model']}; ORT {env['packages']['onnxruntime']} fp32")
        for threads, peak in peaks.items():
            print(f"fp32 peak estimate for {threads} core(s): {peak['peak_gmacs_per_s']:.1f} GMAC/s, assuming:")
            for line in peak["assumptions"]:
                print(f"  - {line}")
        print(f"{'model':<20} {'batch':>5} {'thr':>3} {'MMACs':>8} {'p50 ms':>8} {'GMAC/s':>8} {'% peak':>7}")
        for r in table:
            pct = f"{r['percent_of_peak']:.1f}" if r["percent_of_peak"] is not None else "?"
            noisy = "  (noisy run)" if r["cv"] > 0.10 else ""
            print(f"{r['model']:<20} {r['batch']:>5} {r['threads']:>3} {r['macs'] / 1e6:>8.1f} {r['p50_ms']:>8.2f} "
                  f"{r['achieved_gmacs_per_s']:>8.2f} {pct:>7}{noisy}")
        return EXIT_OK

    return run(body)


if __name__ == "__main__":
    sys.exit(main())
