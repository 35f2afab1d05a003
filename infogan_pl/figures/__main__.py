"""`python -m infogan_pl.figures <run dir> [...]`: redraw a run's training curves (figures/curves.png and
figures/mi_curve.png) from its csv/metrics.csv, for any run, finished, killed or resumed."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from infogan_pl.figures.curves import draw_curves


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infogan_pl.figures", description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run directories (holding csv/metrics.csv)")
    args = parser.parse_args(argv)
    status = 0
    for run in args.runs:
        paths = draw_curves(run)
        if paths:
            print("\n".join(f"Wrote {p}" for p in paths))
        else:
            print(f"error: {run} holds no csv/metrics.csv with rows: give a run directory", file=sys.stderr)
            status = 2
    return status


if __name__ == "__main__":
    sys.exit(main())
