"""Scans: chi^2_min over a (beta, w) grid, checkpointed, analysed, plotted.

Imports the fitting layer and the model.  config (what determines the
numbers), solver (one compiled chunk solver), scan (the resumable run),
refit (neighbour refit), record (the JSON record), merge (split scans),
analysis (profiles, intervals, verdict), plots and report_text (output).
`analysis` and `report_text` need only NumPy, so reading a saved scan never
imports JAX.
"""
