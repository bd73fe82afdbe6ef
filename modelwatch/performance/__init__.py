"""Performance: metrics, bootstrap intervals, the per-segment report, CBPE estimate, significance
(pure)."""
