"""Figure 2: decision regions of Algorithm 1 and Algorithm 2 on the n = 34 set, with each training point's
eps-box and Theorem 4's worst-case vertex (white dot)."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from _common import done, start  # noqa: E402
from _plotting import decision_region, training_points  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from convexadv.data import Dataset  # noqa: E402
from convexadv.io import atomic_path  # noqa: E402
from convexadv.network import ReLUNetwork, certified_linear_region, robust_loss_terms, worst_case_perturbation  # noqa: E402,E501

log = start(snakemake)
p = snakemake.params
train = Dataset.load(snakemake.input.train)
X, y, eps = train.X, train.y, p.eps
fig, axes = plt.subplots(1, 2, figsize=(11, 5.2))
for ax, key, title in zip(axes, ("alg1", "alg2"), ("Algorithm 1 (standard)", "Algorithm 2 (adversarial)")):
    net = ReLUNetwork.load(getattr(snakemake.input, key))
    decision_region(ax, net, X, margin=0.2)
    for x in X:
        ax.add_patch(Rectangle((x[0] - eps, x[1] - eps), 2 * eps, 2 * eps, fill=False, edgecolor="white", lw=0.8,
                               zorder=2))
    vertex = X + worst_case_perturbation(net, X, y, eps, loss=p.loss)
    ax.scatter(vertex[:, 0], vertex[:, 1], s=9, c="white", zorder=4)
    training_points(ax, X, y, negative_color="red")
    terms, certified = robust_loss_terms(net, X, y, eps, loss=p.loss)
    robust_ok = int(((y * net.forward(vertex)) > 0).sum())
    ax.set_title(f"{title}\nwidth {net.width}; {robust_ok}/{len(y)} boxes classified right at the worst vertex")
    log.info("%s: width %d, %d/%d points certified linear on their box, %d/%d correct at the worst vertex, "
             "mean robust hinge %.4g", key, net.width, int(certified.sum()), len(y), robust_ok, len(y), terms.mean())
    assert np.array_equal(certified, certified_linear_region(net, X, eps))
fig.tight_layout()
with atomic_path(snakemake.output[0]) as tmp:
    fig.savefig(tmp, dpi=150)
done(log, snakemake.output)
