"""Search for the best sub-networks of a trained supernet under a MACs range or a device's latency budget.

:mod:`~anas_zoo.search.evolution` runs the evolutionary search (mutation + crossover, constraint by
rejection, dedup, resumable); :mod:`~anas_zoo.search.pareto_archive` keeps the best genome per cost
bucket and writes the Pareto set as JSON, CSV and a plot; :mod:`~anas_zoo.search.latency_model`
predicts a genome's latency on a measured device, for latency-constrained search. The accuracy that
ranks genomes is any ``score(arch) -> float`` callable, so the engine does not depend on training
code; :mod:`~anas_zoo.search.held_out` makes one from a trained supernet and its held-out split, which
``anas-search`` wires in.
"""
