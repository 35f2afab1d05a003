"""What a checkpoint needs beyond Lightning's own state for a bit-for-bit resume, and checks before resuming."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

# Keys of the stored run configuration that must match for a checkpoint to fit the model being built.
MUST_MATCH = (
    "model._target_",
    "latent",
    "data._target_",
    "data.variant",
    "data.image_size",
    "model.generator",
    "model.discriminator",
    "model.learn_sigma",
)


def rng_state() -> dict:
    """Python, NumPy, torch (and CUDA) generator states, in types torch.load(weights_only=True) accepts."""
    np_state = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(_as_tuple(state["python"]))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _as_tuple(x):
    return tuple(_as_tuple(v) for v in x) if isinstance(x, list | tuple) else x


def load_checkpoint_file(path: str | Path) -> dict:
    """torch.load(weights_only=True) with one clear error for a missing, truncated or foreign file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated zip, foreign pickle, ...: torch raises many types
        raise ValueError(f"checkpoint {path} is truncated or corrupt ({type(err).__name__}); use another one") from None


def _select(config: dict, dotted: str):
    node = config
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def check_compatible(path: str | Path, stored: dict | None, current: dict) -> None:
    """Raise one line naming what differs when a checkpoint was trained with another model / latent / data.

    stored: the configuration saved in the checkpoint; current: {dotted key: value} of this run for MUST_MATCH."""
    if stored is None:
        raise ValueError(f"checkpoint {path} holds no infogan_pl configuration: it was not written by infogan_pl")
    for key in MUST_MATCH:
        old, new = _select(stored, key), current.get(key)
        if old != new:
            raise ValueError(f"checkpoint {path} was trained with {key}={old}, this run has {key}={new}")
