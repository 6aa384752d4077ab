"""Model files carry their own config and load without unpickling (``weights_only=True``).

Model files and training states also carry a SHA-256 of their content: torch's zip container
does not notice a flipped bit inside a tensor, so without it a damaged file would load and
serve (or resume) silently wrong weights.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import torch

from mtl.config import ModelConfig
from mtl.models import get_architecture
from mtl.models.layers import InputSpec

FORMAT_VERSION = 1


def digest(obj) -> str:
    """SHA-256 of a nest of dicts, lists, tensors and plain values: keys, dtypes, shapes, bytes."""
    h = hashlib.sha256()

    def walk(x, key: str) -> None:
        if isinstance(x, torch.Tensor):
            t = x.detach().cpu().contiguous().reshape(-1)
            h.update(f"{key}:{x.dtype}:{tuple(x.shape)}".encode())
            h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        elif isinstance(x, dict):
            for k in sorted(x, key=str):
                walk(x[k], f"{key}/{k}")
        elif isinstance(x, list | tuple):
            for i, v in enumerate(x):
                walk(v, f"{key}[{i}]")
        else:
            h.update(f"{key}={x!r}".encode())

    walk(obj, "")
    return h.hexdigest()


def _save(path: Path, payload: dict) -> None:
    """Write with the payload's digest, to a temporary name, then rename: a kill mid-write leaves
    the previous file intact rather than a truncated one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({**payload, "sha256": digest(payload)}, tmp)
    tmp.replace(path)


def _verified(payload: dict) -> bool:
    """Whether the digest the file carries matches its content (files from before the digest
    existed carry none and are taken as they are)."""
    saved = payload.pop("sha256", None)
    return saved is None or saved == digest(payload)


def save_model(path: Path, model: torch.nn.Module, spec: InputSpec, model_cfg: ModelConfig,
               calibration: dict[str, dict] | None = None) -> None:
    """``calibration``: per quantile task, the adjustment chosen on validation that the scorer
    applies to its forecast (mtl/evaluation/forecast.py: conformal_adjustment)."""
    payload = {
        "format_version": FORMAT_VERSION,
        "spec": spec.to_dict(),
        "model_config": model_cfg.model_dump(mode="json"),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    if calibration:  # absent otherwise: a model without quantile tasks hashes as before
        payload["calibration"] = {k: {"c": float(v["c"]), "m": float(v["m"])} for k, v in calibration.items()}
    _save(path, payload)


def load_model(path: Path) -> torch.nn.Module:
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a truncated or foreign file: say which one, not a pickle traceback
        raise ValueError(f"{path}: not a readable model file ({err}); rerun `mtl train`") from None
    if not _verified(ckpt):
        raise ValueError(f"{path}: checksum mismatch, the model file is corrupted; rerun `mtl train` "
                         "(or restore the file with `dvc checkout`)")
    if ckpt.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path}: model format {ckpt.get('format_version')} is not {FORMAT_VERSION}")
    # Files written before model.norm existed were trained without normalisation.
    cfg = ModelConfig.model_validate({"norm": "none"} | ckpt["model_config"])
    model = get_architecture(cfg.architecture)(InputSpec.from_dict(ckpt["spec"]), cfg)
    state = ckpt["state_dict"]
    if cfg.architecture == "mmoe" and "gates.weight" in state:  # MMoE files written before ScenarioGates
        state = {("gates.linear." + k[6:] if k.startswith("gates.") else k): v for k, v in state.items()}
    model.load_state_dict(state)
    model.calibration = dict(ckpt.get("calibration", {}))  # read by mtl.scoring.Scorer
    return model.eval()


# ---------------------------------------------------------------------------------------------
# Training state: written after every epoch so a killed run resumes instead of starting over.

STATE_VERSION = 1


def save_training_state(path: Path, state: dict) -> None:
    """Model, optimizer and loop state (epoch, best weights so far, RNG) in one weights-only file.

    Written to a temporary name and renamed, so a kill mid-write leaves the previous epoch's
    state intact rather than a truncated file.
    """
    _save(path, {"state_version": STATE_VERSION, **state})


def load_training_state(path: Path, fingerprint: str) -> dict | None:
    """The saved state if it exists and belongs to this exact run (same data, model and training
    config, by ``fingerprint``); otherwise None, and training starts from scratch."""
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a foreign or damaged file is not worth resuming from
        print(f"warning: {path} is not a readable training state ({err}); training starts afresh", file=sys.stderr)
        return None
    if not _verified(state):
        print(f"warning: {path}: checksum mismatch, the training state is corrupted; training starts afresh",
              file=sys.stderr)
        return None
    if state.get("state_version") != STATE_VERSION or state.get("fingerprint") != fingerprint:
        return None
    return state
