"""infogan_pl: InfoGAN research with PyTorch Lightning + Hydra. `load_run(<run dir or checkpoint>)` gives a trained
run from Python (infogan_pl.api); the command lines are `python -m infogan_pl`, `infogan_pl.evaluate`,
`infogan_pl.report`, `infogan_pl.figures` and `infogan_pl.semi_supervised`."""

__all__ = ["load_run"]


def __getattr__(name: str):
    # imported on first use, so `python -m infogan_pl --help` does not load torch
    if name == "load_run":
        from infogan_pl.api import load_run

        return load_run
    raise AttributeError(f"module 'infogan_pl' has no attribute {name!r}")
