"""Measure latency of zoo models on this device: the name users run, kept as a thin entry point.

    python benchmarks/run_latency.py --models 'attentivenas_a*' --backends torch,ort,openvino,executorch \\
        --precision fp32,int8 --calib-data "$ANAS_ZOO_DATA" --threads 2 --out benchmarks/results/my_machine

is ``anas-bench latency`` with the same arguments (``anas-bench latency --help`` lists them).
"""

from __future__ import annotations

import sys

from anas_zoo.cli.bench import main

if __name__ == "__main__":
    sys.exit(main(["latency", *sys.argv[1:]]))
