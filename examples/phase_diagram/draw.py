"""Draws the phase diagram of a sweep over two axes: the extent of induction
(colour) over the first axis (rows) and the second (columns), from the table
`eifield sweep` writes (or `eifield.sweep` returns).

    eifield sweep examples/phase_diagram/sweep.ron --out out/phase
    python examples/phase_diagram/draw.py out/phase/points.csv docs/phase_diagram.png
"""

import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def main(table: str, out: str) -> None:
    points = pd.read_csv(table)
    y_name, x_name = points.columns[1], points.columns[2]
    grid = points.pivot(index=y_name, columns=x_name, values="extent")
    ys, xs = grid.index.to_numpy(), grid.columns.to_numpy()
    fig, ax = plt.subplots(figsize=(7.5, 6))
    image = ax.pcolormesh(xs, ys, grid.to_numpy(), shading="nearest", cmap="viridis")
    fig.colorbar(image, label="extent of induction (cells from the stimulated cell)")
    # Where the control fires on its own, the field is not at rest.
    control = points.pivot(index=y_name, columns=x_name, values="activations_control").to_numpy()
    yy, xx = np.meshgrid(ys, xs, indexing="ij")
    busy = control > 0
    ax.scatter(xx[busy], yy[busy], s=6, c="white", marker="x", linewidths=0.6,
               label="the field fires without the stimulus")
    ax.legend(loc="lower right", fontsize=8, framealpha=0.6)
    ax.set(xlabel=x_name, ylabel=y_name,
           title=f"Extent of induction, {len(points)} points of 64 × 64 cells")
    fig.tight_layout()
    fig.savefig(out, dpi=110)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
