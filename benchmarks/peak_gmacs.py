"""fp32 GMAC/s of measured runs against this CPU's fp32 peak: ``anas-bench peak`` with the same arguments.

    python benchmarks/peak_gmacs.py benchmarks/results/xeon_2core_kvm
"""

from __future__ import annotations

import sys

from anas_zoo.cli.bench import main

if __name__ == "__main__":
    sys.exit(main(["peak", *sys.argv[1:]]))
