"""Decision-region drawing shared by Figures 1 and 2 (the paper's colours: blue = +1, black = -1)."""

import numpy as np
from matplotlib.colors import ListedColormap

REGION_CMAP = ListedColormap(["black", "#1f5fd6"])


def decision_region(ax, network, X, *, margin=0.25, resolution=400):
    lo, hi = X.min(axis=0) - margin, X.max(axis=0) + margin
    xs, ys = np.linspace(lo[0], hi[0], resolution), np.linspace(lo[1], hi[1], resolution)
    gx, gy = np.meshgrid(xs, ys)
    scores = network.forward(np.column_stack([gx.ravel(), gy.ravel()])).reshape(gx.shape)
    ax.imshow((scores > 0).astype(float), origin="lower", extent=(lo[0], hi[0], lo[1], hi[1]),
              cmap=REGION_CMAP, vmin=0, vmax=1, interpolation="nearest", aspect="auto")
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])


def training_points(ax, X, y, *, negative_color="white"):
    pos, neg = y > 0, y < 0
    ax.scatter(X[pos, 0], X[pos, 1], marker="x", c="red", s=40, linewidths=1.5, label="+1", zorder=3)
    ax.scatter(X[neg, 0], X[neg, 1], marker="o", facecolors="none", edgecolors=negative_color, s=40,
               linewidths=1.5, label="-1", zorder=3)
