"""`python -m infogan_pl.evaluate ckpt_path=<ckpt> [key=value ...]`: every metric of a checkpoint, full budgets.

Writes <checkpoint dir>/eval_<checkpoint name>[_running]/metrics.json, the traversal grids and the code x factor MI
heatmap.
The model is rebuilt from the configuration stored in the checkpoint (by the same builder as training); `key=value`
arguments override it (e.g. `paths.data_dir=/elsewhere`, `device=cuda`, `budget.real=2000`, `bn=running`). Runs on
the CPU by default, whatever trained it.
"""

from __future__ import annotations

import difflib
import json
import sys
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

from infogan_pl.cli import HELP_FLAGS, dotted_keys

# torch, Lightning and the metrics are imported when a checkpoint is evaluated, so --help answers at once.
USAGE = """usage: python -m infogan_pl.evaluate ckpt_path=<checkpoint> [key=value ...]

Every metric of a trained checkpoint with full budgets (10,000 real images, 1,000 generated per code value, FID on
10,000 per side), its labelled traversals, the code x factor MI heatmap and tables, written to
<checkpoint dir>/eval_<checkpoint name>/ (metrics.json holds every number). The model is rebuilt from the
configuration stored in the checkpoint; key=value overrides it.

  ckpt_path=FILE        the checkpoint, e.g. outputs/basicprop_line/<time>/checkpoints/last.ckpt (required)
  device=cpu|cuda       where to evaluate (default cpu)
  bn=recalibrate|running  batch-norm statistics of D/Q re-estimated on real images (default), or as trained
                        (writes eval_<name>_running/)
  budget.real=N budget.generated_per_value=N budget.fid=N budget.mi=N budget.bn_images=N budget.seed=N
  <any key of the run's configuration>, e.g. paths.data_dir=/elsewhere

Exit status: 0 evaluated; 2 refused (one line on stderr: missing or unreadable checkpoint, unknown key)."""


def full_budget():
    from infogan_pl.metrics.evaluation import Budget

    return Budget(real=10_000, generated_per_value=1_000, fid=10_000, mi=10_000)


def evaluate_keys() -> tuple[str, ...]:
    """This command's own keys (the rest are the checkpoint configuration's)."""
    from infogan_pl.metrics.evaluation import Budget

    return ("ckpt_path", "device", "bn", *(f"budget.{name}" for name in Budget.__dataclass_fields__))


def load_checkpoint(path: str | Path, overrides: DictConfig | None = None, device: str = "cpu"):
    """(config, datamodule, model, iteration) rebuilt from an infogan_pl checkpoint, weights loaded, in eval mode."""
    from infogan_pl.build import ConfigError, build
    from infogan_pl.checkpointing import CONFIG_KEY, load_checkpoint_file

    ckpt = load_checkpoint_file(path)
    cfg = OmegaConf.create(ckpt[CONFIG_KEY])
    known = dotted_keys(OmegaConf.to_container(cfg, resolve=False))
    for key in dotted_keys(OmegaConf.to_container(overrides)) if overrides is not None else []:
        if key not in known:
            near = difflib.get_close_matches(key, [*known, *evaluate_keys()], n=1)
            hint = f"did you mean {near[0]}?" if near else f"this command's own: {', '.join(evaluate_keys())}"
            raise ConfigError(f"{key} is neither a key of the checkpoint's configuration nor of evaluate ({hint}).")
    if overrides is not None:
        with open_dict(cfg):
            cfg = OmegaConf.merge(cfg, overrides)
    datamodule, model = build(cfg)
    datamodule.setup("validate")
    try:
        missing, unexpected = model.load_state_dict(ckpt["state_dict"], strict=False)
        mismatch = f"e.g. {(missing or unexpected)[0]}" if missing or unexpected else ""
    except RuntimeError as err:  # a tensor of another shape
        shape = next((line.strip(" .") for line in str(err).splitlines() if "size mismatch" in line), "")
        mismatch = f"e.g. {shape}"
    if mismatch:
        given = dotted_keys(OmegaConf.to_container(overrides)) if overrides is not None else []
        changed = [
            k for k in given if k.split(".")[0] in ("model", "latent") and not any(o.startswith(f"{k}.") for o in given)
        ]
        cause = f"{', '.join(changed)} changed the model it was trained as" if changed else "another model's weights"
        raise ConfigError(
            f"checkpoint {path}: its weights do not fit the model ({cause}; {mismatch}). Evaluate a checkpoint as it "
            "was trained: override paths, data, device or budgets, not the model or its latent codes."
        )
    model.to(device).eval()
    return cfg, datamodule, model, ckpt.get("iteration", 0)


def evaluate_checkpoint(path: str | Path, args: DictConfig) -> Path:
    """Evaluate one checkpoint; returns the directory it wrote."""
    import torch

    from infogan_pl.atomic import atomic_write
    from infogan_pl.build import ConfigError, build_labeller
    from infogan_pl.data.sampling import take
    from infogan_pl.figures import code_table, mi_heatmap, save_traversals, traversal_images
    from infogan_pl.metrics.evaluation import BN_MODES, Budget, evaluate_model, untrained_baseline

    budget_args = args.pop("budget", None) or {}
    device = args.pop("device", "cpu")
    bn = args.pop("bn", "recalibrate")
    unknown = sorted(set(budget_args) - set(Budget.__dataclass_fields__))
    if unknown:
        raise ConfigError(f"budget.{unknown[0]} is not a budget: choose from {', '.join(Budget.__dataclass_fields__)}.")
    if bn not in BN_MODES:
        raise ConfigError(f"bn must be one of {', '.join(BN_MODES)}, got {bn!r}.")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device={device}, but torch sees no CUDA device here: use device=cpu.")
    cfg, datamodule, model, iteration = load_checkpoint(path, args, device)
    budget = Budget(**{**full_budget().__dict__, **budget_args})
    labeller = build_labeller(cfg)
    note = labeller.setup() if labeller is not None else None
    if note:
        print(f"note: {note}")
        labeller = None
    result = evaluate_model(model, datamodule, budget, labeller, bn)
    if "metric/cat_acc" in result.metrics and not datamodule.factors_are_attributes:
        images, factors = take(datamodule.val_set, budget.real)
        names, kinds = datamodule.factor_names, datamodule.factor_kinds
        result.metrics["metric/cat_acc_untrained"] = untrained_baseline(model, images, factors, names, kinds)
    out = Path(path).parent / f"eval_{Path(path).stem}{'_running' if bn == 'running' else ''}"
    out.mkdir(parents=True, exist_ok=True)
    model.eval()
    title = f"{cfg.name}, seed {cfg.seed}, iteration {iteration} ({Path(path).name})"
    save_traversals(traversal_images(model), out, "traversal", 9, 2.0, title)
    if result.mi_matrix is not None:
        mi_heatmap(result.mi_matrix, result.code_labels, result.factor_labels, out / "mi_heatmap.png")
    for name, counts in result.tables.items():
        code_table(counts, name, out / f"{name}_table.png")
    record = {"checkpoint": str(path), "experiment": cfg.name, "iteration": iteration, "bn": bn}
    record["budget"] = dict(budget.__dict__)  # how many images each metric saw (FID: per side), and the seed
    atomic_write(out / "metrics.json", json.dumps({**record, "metrics": result.metrics}, indent=2, sort_keys=True))
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if any(a in HELP_FLAGS for a in argv):
        print(USAGE)
        return 0
    from infogan_pl.build import ConfigError
    from infogan_pl.report import metrics_table

    try:
        args = OmegaConf.from_dotlist(argv)
    except Exception as err:  # omegaconf raises several grammar errors
        print(f"error: could not parse {argv}: {err}. Use key=value, e.g. ckpt_path=run/last.ckpt", file=sys.stderr)
        return 2
    path = args.pop("ckpt_path", None)
    if path in (None, ""):
        print("error: give the checkpoint: python -m infogan_pl.evaluate ckpt_path=<file>", file=sys.stderr)
        return 2
    try:
        out = evaluate_checkpoint(path, args)
    except (FileNotFoundError, ValueError, ConfigError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except (RuntimeError, OSError) as err:
        print(f"error: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}", file=sys.stderr)
        return 1
    metrics = json.loads((out / "metrics.json").read_text())["metrics"]
    print(metrics_table(metrics))
    print(f"Wrote {out / 'metrics.json'} (every metric) and figures in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
