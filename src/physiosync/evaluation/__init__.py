"""Evaluation: prediction tables, metrics, statistics and the run / comparison reports."""
