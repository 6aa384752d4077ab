"""Per-task metrics with slices and bootstrap intervals, plots, and the comparison with the champion."""
