"""Evaluation: column peaks and matching (segmentation), plus classification metrics
(:mod:`temflow.evaluation.classification`)."""

from temflow.evaluation.matching import (
    MatchResult,
    match_columns,
    match_positions,
    score_table_row,
)
from temflow.evaluation.peaks import find_peaks, find_peaks_per_class, refine_subpixel

__all__ = [
    "MatchResult",
    "find_peaks",
    "find_peaks_per_class",
    "match_columns",
    "match_positions",
    "refine_subpixel",
    "score_table_row",
]
