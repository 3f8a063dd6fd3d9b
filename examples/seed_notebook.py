"""The research notebook's figures, with eifield in place of SciPy's odeint.

The notebook integrated a 7 × 7 lattice in the slow homoclinic regime, driven
by a pulse train into the centre cell, and drew: every cell's E against time,
a raster of E (cells × time), the stimulated cell over its pulse train, and an
animated heat map of the lattice. This script draws the same figures into
--out (default: the current folder). `examples/seed_notebook.ipynb` is the
notebook version of it.

    python examples/seed_notebook.py --out figures/
"""

import argparse
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.animation import FuncAnimation, PillowWriter  # noqa: E402

import eifield  # noqa: E402


def pulse_train(t, freq, width, amp, onset=0.0):
    """The notebook's rect pulse train: `amp` while (t - onset) mod T lies in [T/2, T/2 + width]."""
    period = 1.0 / freq
    phase = np.mod(t - onset, period)
    return np.where((t >= onset) & (phase >= period / 2) & (phase < period / 2 + width), amp, 0.0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("."))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    scene = eifield.Scene.builtin("seed_notebook")
    started = time.perf_counter()
    result = eifield.run(scene)
    print(f"{scene.name}: {len(result.t)} samples of {scene.shape[0]} × {scene.shape[1]} cells "
          f"in {1000 * (time.perf_counter() - started):.1f} ms")
    t, E = result.t, result.E
    rows, cols = scene.shape
    flat = E.reshape(len(t), rows * cols)

    # Every cell's E against time, stacked.
    fig, ax = plt.subplots(figsize=(10, 8))
    for k in range(rows * cols):
        ax.plot(t, flat[:, k] + 3 * k, lw=0.8)
    ax.set(xlabel="time", ylabel="E (offset 3 per cell)", title="E of every cell")
    fig.savefig(args.out / "traces.png", dpi=100)
    plt.close(fig)

    # Raster: cells × time.
    fig, ax = plt.subplots(figsize=(10, 5))
    image = ax.imshow(flat.T, aspect="auto", cmap="bwr", extent=[t[0], t[-1], rows * cols - 0.5, -0.5])
    fig.colorbar(image, label="E")
    ax.set(xlabel="time", ylabel="cell (row-major)", title="Raster")
    fig.savefig(args.out / "raster.png", dpi=100)
    plt.close(fig)

    # The stimulated cell over its pulse train.
    row, col = rows // 2, cols // 2
    fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(10, 5), height_ratios=[3, 1])
    top.plot(t, E[:, row, col])
    top.set(ylabel="E", title=f"The stimulated cell ({row}, {col})")
    bottom.plot(t, pulse_train(t, scene["stimuli[0].freq"], scene["stimuli[0].width"], scene["stimuli[0].amp"]))
    bottom.set(xlabel="time", ylabel="stimulus")
    fig.savefig(args.out / "stimulated_cell.png", dpi=100)
    plt.close(fig)

    # The animated heat map (every 20th sample).
    fig, ax = plt.subplots(figsize=(4, 4))
    frames = range(0, len(t), 20)
    image = ax.imshow(E[0], vmin=flat.min(), vmax=flat.max(), cmap="hot")
    title = ax.set_title("t = 0.00")

    def draw(n):
        image.set_data(E[n])
        title.set_text(f"t = {t[n]:.2f}")
        return image, title

    FuncAnimation(fig, draw, frames=frames).save(args.out / "heatmap.gif", writer=PillowWriter(fps=10))
    plt.close(fig)
    print(f"figures in {args.out}")


if __name__ == "__main__":
    main()
