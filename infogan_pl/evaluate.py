"""`python -m infogan_pl.evaluate ckpt_path=<ckpt> [key=value ...]`: every metric of a checkpoint, full budgets.

Writes <checkpoint dir>/eval_<checkpoint name>/metrics.json, the traversal grids and the code x factor MI heatmap.
The model is rebuilt from the configuration stored in the checkpoint; `key=value` arguments override it (e.g.
`paths.data_dir=/elsewhere`, `device=cuda`, `budget.real=2000`). Runs on CPU by default, whatever trained it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from infogan_pl.figures import mi_heatmap, save_grids, traversal_grids
from infogan_pl.metrics.evaluation import Budget, evaluate_model

FULL = Budget(real=10_000, generated_per_value=1_000, fid=10_000, mi=10_000)


def load_checkpoint(path: str | Path, overrides: DictConfig | None = None, device: str = "cpu"):
    """(config, datamodule, model) rebuilt from an infogan_pl checkpoint, weights loaded, model in eval mode."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} not found")
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if "infogan_pl_config" not in ckpt:
        raise ValueError(f"{path} holds no infogan_pl configuration: was it written by `python -m infogan_pl`?")
    cfg = OmegaConf.create(ckpt["infogan_pl_config"])
    if overrides is not None:
        cfg = OmegaConf.merge(cfg, overrides)
    datamodule = instantiate(cfg.data)
    datamodule.setup("validate")
    latent, noise = instantiate(cfg.latent), instantiate(cfg.noise)
    loss = instantiate(cfg.loss) if "loss" in cfg else None
    model = instantiate(cfg.model, _partial_=True)(latent=latent, noise=noise, loss=loss, channels=datamodule.channels)
    model.load_state_dict(ckpt["state_dict"])
    model.to(device).eval()
    iteration = ckpt.get("iteration", 0)
    return cfg, datamodule, model, iteration


def evaluate_checkpoint(path: str | Path, args: DictConfig) -> Path:
    """Evaluate one checkpoint; returns the directory it wrote."""
    budget_args = args.pop("budget", None) or {}
    device = args.pop("device", "cpu")
    cfg, datamodule, model, iteration = load_checkpoint(path, args, device)
    budget = Budget(**{**FULL.__dict__, **budget_args})
    result = evaluate_model(model, datamodule, budget)
    out = Path(path).parent / f"eval_{Path(path).stem}"
    out.mkdir(parents=True, exist_ok=True)
    save_grids(traversal_grids(model), out, "traversal")
    if result.mi_matrix is not None:
        mi_heatmap(result.mi_matrix, result.code_labels, result.factor_labels, out / "mi_heatmap.png")
    record = {"checkpoint": str(path), "experiment": cfg.name, "iteration": iteration, "metrics": result.metrics}
    (out / "metrics.json").write_text(json.dumps(record, indent=2, sort_keys=True))
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = OmegaConf.from_dotlist(argv)
    except Exception as err:  # omegaconf raises several grammar errors
        print(
            f"error: could not parse arguments {argv}: {err}. Use key=value, e.g. ckpt_path=run/last.ckpt",
            file=sys.stderr,
        )
        return 2
    path = args.pop("ckpt_path", None)
    if path is None:
        print("error: give the checkpoint: python -m infogan_pl.evaluate ckpt_path=<file>", file=sys.stderr)
        return 2
    try:
        out = evaluate_checkpoint(path, args)
    except (FileNotFoundError, ValueError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    metrics = json.loads((out / "metrics.json").read_text())["metrics"]
    for name in sorted(metrics):
        print(f"{name:40s} {metrics[name]:.4f}")
    print(f"Wrote {out / 'metrics.json'} and figures in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
