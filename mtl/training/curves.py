"""Training curves: the per-epoch history as one series per figure, for DVC plots (one JSON file
per series, ``dvc plots show``/``diff``) and as a picture on the MLflow run."""

from __future__ import annotations

# What a curve is drawn for: each task's validation metric and training loss (the weighting's
# internals stay in the MLflow metrics).
CURVE_PREFIXES = ("val_", "train_loss")


def series(history: list[dict]) -> dict[str, list[dict]]:
    """{"val_auc_click": [{"epoch": 1, "value": 0.71}, ...], "train_loss_click": [...], ...}."""
    out: dict[str, list[dict]] = {}
    for record in history:
        for key, value in record.items():
            if key.startswith(CURVE_PREFIXES) and value is not None:
                out.setdefault(key, []).append({"epoch": int(record["epoch"]), "value": round(float(value), 6)})
    return out


def figure(curves: dict[str, list[dict]]):
    """Validation metrics (left) and training losses (right) by epoch, one line per task."""
    import matplotlib

    matplotlib.use("Agg")  # no display on a worker
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    panels = ((axes[0], "val_", "validation (AUC; MSE for regression)"), (axes[1], "train_loss", "training loss"))
    for ax, prefix, title in panels:
        for name, points in sorted(curves.items()):
            if name.startswith(prefix):
                ax.plot([p["epoch"] for p in points], [p["value"] for p in points], marker="o", label=name)
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
