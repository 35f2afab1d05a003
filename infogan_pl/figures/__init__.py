"""Figures a researcher looks at: labelled traversals, training curves, what the codes mean on real data."""

from infogan_pl.figures.codes import code_table, mi_heatmap, save_mi_table
from infogan_pl.figures.curves import draw_curves
from infogan_pl.figures.traversals import raw_grid, save_traversals, traversal_figure, traversal_images

__all__ = [
    "code_table",
    "draw_curves",
    "mi_heatmap",
    "raw_grid",
    "save_mi_table",
    "save_traversals",
    "traversal_figure",
    "traversal_images",
]
