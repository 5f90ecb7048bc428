"""Build this device's latency model for a search space: ``anas-bench latency-model`` with the same arguments.

    python benchmarks/build_latency_model.py --space attentivenas --backend ort --threads 1 \\
        --out benchmarks/results/latency_model_ort_t1.json
"""

from __future__ import annotations

import sys

from anas_zoo.cli.bench import main

if __name__ == "__main__":
    sys.exit(main(["latency-model", *sys.argv[1:]]))
