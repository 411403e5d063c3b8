"""Evaluation: confusion-matrix metrics and the `edgefuse eval` report (JSON contract)."""
