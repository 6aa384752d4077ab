"""Model files carry their own config and load without unpickling (``weights_only=True``)."""

from __future__ import annotations

from pathlib import Path

import torch

from mtl.config import ModelConfig
from mtl.models import get_architecture
from mtl.models.layers import InputSpec

FORMAT_VERSION = 1


def save_model(path: Path, model: torch.nn.Module, spec: InputSpec, model_cfg: ModelConfig) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(
        {
            "format_version": FORMAT_VERSION,
            "spec": spec.to_dict(),
            "model_config": model_cfg.model_dump(mode="json"),
            "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        },
        tmp,
    )
    tmp.replace(path)


def load_model(path: Path) -> torch.nn.Module:
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a truncated or foreign file: say which one, not a pickle traceback
        raise ValueError(f"{path}: not a readable model file ({err}); rerun `mtl train`") from None
    if ckpt.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path}: model format {ckpt.get('format_version')} is not {FORMAT_VERSION}")
    # Files written before model.norm existed were trained without normalisation.
    cfg = ModelConfig.model_validate({"norm": "none"} | ckpt["model_config"])
    model = get_architecture(cfg.architecture)(InputSpec.from_dict(ckpt["spec"]), cfg)
    state = ckpt["state_dict"]
    if cfg.architecture == "mmoe" and "gates.weight" in state:  # MMoE files written before ScenarioGates
        state = {("gates.linear." + k[6:] if k.startswith("gates.") else k): v for k, v in state.items()}
    model.load_state_dict(state)
    return model.eval()


# ---------------------------------------------------------------------------------------------
# Training state: written after every epoch so a killed run resumes instead of starting over.

STATE_VERSION = 1


def save_training_state(path: Path, state: dict) -> None:
    """Model, optimizer and loop state (epoch, best weights so far, RNG) in one weights-only file.

    Written to a temporary name and renamed, so a kill mid-write leaves the previous epoch's
    state intact rather than a truncated file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"state_version": STATE_VERSION, **state}, tmp)
    tmp.replace(path)


def load_training_state(path: Path, fingerprint: str) -> dict | None:
    """The saved state if it exists and belongs to this exact run (same data, model and training
    config, by ``fingerprint``); otherwise None, and training starts from scratch."""
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # a foreign or damaged file is not worth resuming from
        return None
    if state.get("state_version") != STATE_VERSION or state.get("fingerprint") != fingerprint:
        return None
    return state
