"""Where the Hydra configs live and how they are composed, importing Hydra and OmegaConf only: `--help` and the
refusal of a misspelt key answer in a second, without loading torch or Lightning.

The configs are the top-level `conf/` of the repository (`sweeps/` holds the sweep recipes, group `sweep`); a wheel
carries both inside the package (`infogan_pl/conf`, `infogan_pl/sweeps`). The sweep recipes are registered in Hydra's
ConfigStore as the group `sweep`, so `+sweep=lambda_lr` works from the repository and from an installed wheel alike.
"""

from __future__ import annotations

import os
from pathlib import Path

from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

_HERE = Path(__file__).resolve().parent


def _located(name: str) -> Path:
    """<package>/<name> in an installed wheel, else <repository>/<name> (a checkout or an editable install)."""
    inside = _HERE / name
    return inside if inside.is_dir() else _HERE.parent / name


CONFIG_DIR = str(_located("conf"))
SWEEPS_DIR = _located("sweeps")

# `${cwd:}`: the directory the command runs in. Unlike `${hydra:runtime.cwd}` it resolves before Hydra has set its
# runtime config, i.e. in sweep directories and in the pre-flight check (Hydra never changes directory here).
OmegaConf.register_new_resolver("cwd", os.getcwd, replace=True)


def register_sweeps() -> list[str]:
    """Every sweeps/<name>.yaml as the Hydra option sweep=<name> (package _global_: a recipe sets hydra.* keys);
    returns the names. The W&B sweep specs (.yml) are not Hydra configs."""
    store = ConfigStore.instance()
    names = []
    for path in sorted(SWEEPS_DIR.glob("*.yaml")):
        store.store(group="sweep", name=path.stem, node=OmegaConf.load(path), package="_global_", provider="infogan_pl")
        names.append(path.stem)
    return names


SWEEPS = register_sweeps()


def compose(config_name: str, overrides: list[str]):
    """The configuration Hydra composes for `overrides` (no run directory, no Hydra runtime)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return hydra_compose(config_name, overrides=overrides)
