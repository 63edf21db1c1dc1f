"""Figure 3 (section VII-C): l_convex - l_nonconvex over delta around one training point x_k of the
Algorithm 2 model of Figure 2, for ||delta||_inf <= radius and zoomed to ||delta||_inf <= zoom.

l_convex    = 1 - y_k sum_i d_ik (x_k + delta)^T (v_i - w_i)         (the fixed patterns of (10a))
l_nonconvex = 1 - y_k sum_j ((x_k + delta)^T u_j)_+ alpha_j          (the recovered network, (2))
"""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from _common import done, start  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from convexadv.data import Dataset  # noqa: E402
from convexadv.io import atomic_path  # noqa: E402
from convexadv.network import ReLUNetwork  # noqa: E402
from convexadv.programs import ConvexSolution, with_bias_column  # noqa: E402

log = start(snakemake)
p = snakemake.params
train = Dataset.load(snakemake.input.train)
with np.load(snakemake.input.solution) as f:
    sol = ConvexSolution.from_arrays(f)
net = ReLUNetwork.load(snakemake.input.network)
k = int(np.random.default_rng(p.seed).integers(train.X.shape[0]))
x_k, y_k = train.X[k], train.y[k]
ROUNDING = 1e-9
coef = (sol.V - sol.W)[:, sol.patterns[k]].sum(axis=1)  # sum_i d_ik (v_i - w_i), bias row included


def difference(radius):
    t = np.linspace(-radius, radius, p.grid)
    g1, g2 = np.meshgrid(t, t)
    pts = x_k[None, :] + np.column_stack([g1.ravel(), g2.ravel()])
    l_convex = 1 - y_k * with_bias_column(pts, sol.bias) @ coef
    l_nonconvex = 1 - y_k * net.forward(pts)
    return t, (l_convex - l_nonconvex).reshape(g1.shape)


fig, axes = plt.subplots(1, 2, figsize=(11, 4.6))
for ax, radius in zip(axes, (p.radius, p.zoom)):
    t, diff = difference(radius)
    inside = np.abs(t) <= p.eps + 1e-12
    within = np.abs(diff[np.ix_(inside, inside)]).max()
    shown = np.where(np.abs(diff) < ROUNDING, 0.0, diff)  # floating-point noise drawn as exact zero
    vmin, vmax = min(shown.min(), -1e-3), max(shown.max(), 1e-3)
    im = ax.imshow(shown, vmin=vmin, vmax=vmax, origin="lower", extent=(-radius, radius, -radius, radius), cmap="viridis")
    fig.colorbar(im, ax=ax, label=r"$\ell_{convex} - \ell_{nonconvex}$")
    if p.eps < radius:
        ax.add_patch(Rectangle((-p.eps, -p.eps), 2 * p.eps, 2 * p.eps, fill=False, edgecolor="white", ls="--"))
    ax.set_xlabel(r"$\delta_1$")
    ax.set_ylabel(r"$\delta_2$")
    ax.set_title(f"$\\|\\delta\\|_\\infty \\leq {radius:g}$; on the eps-box max |diff| = {within:.0e}", fontsize=10)
    log.info("radius %g: difference range [%.3g, %.3g], max |difference| for ||delta||_inf <= eps = %g: %.3e",
             radius, diff.min(), diff.max(), p.eps, within)
fig.suptitle(f"training point k = {k}, y_k = {y_k:+g}, Algorithm 2 (eps = {p.eps:g}); |diff| < {ROUNDING:g} drawn as 0",
             fontsize=11)
fig.tight_layout()
with atomic_path(snakemake.output[0]) as tmp:
    fig.savefig(tmp, dpi=150)
done(log, snakemake.output)
