"""Exact robust accuracy against eps for every method of a table (mean over the curve seeds; degenerate
models left out), with the training eps marked. Undecided points (the MILP's LP budget or time limit) count as not
robust in the curve; where a method has any, a dotted segment in its colour rises to the accuracy it would have if
every one of them were robust, so the figure shows the whole range the exact answer can lie in."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from _common import done, read_json, start  # noqa: E402

from convexadv.io import atomic_path  # noqa: E402

log = start(snakemake)
p = snakemake.params
rows = []
n_points = 0
for path in snakemake.input.curves:
    method = next(label for label, model in p.models.items() if f"/{model}/" in path)
    curve = read_json(path)
    n_points = max(n_points, curve["points"])
    if curve["degenerate"]:
        log.warning("%s: degenerate model, left out", path)
        continue
    for eps, accuracy, undecided in zip(curve["eps"], curve["exact_robust_accuracy"], curve["undecided"]):
        rows.append({"method": method, "eps": eps, "accuracy": 100 * accuracy, "undecided": undecided,
                     "upper": 100 * (accuracy + undecided / curve["points"])})
curves = pd.DataFrame(rows)
log.info("exact robust accuracy (%%) by eps:\n%s\nundecided points (counted not robust) by eps:\n%s",
         curves.pivot_table(index="eps", columns="method", values="accuracy").to_string(),
         curves.pivot_table(index="eps", columns="method", values="undecided", aggfunc="sum").to_string())
sns.set_theme(style="whitegrid")
fig, ax = plt.subplots(figsize=(8, 4.8))
order = [m for m in p.models if m in set(curves["method"])]
palette = dict(zip(order, sns.color_palette(n_colors=len(order))))
sns.lineplot(data=curves, x="eps", y="accuracy", hue="method", hue_order=order, palette=palette, style="method",
             markers=True, dashes=False, errorbar=("pi", 100), ax=ax)
means = curves.groupby(["method", "eps"])[["accuracy", "upper", "undecided"]].mean().reset_index()
open_range = means[means["undecided"] > 0]
# side by side where several methods have undecided points at the same eps
shift = 0.008 * (curves["eps"].max() - curves["eps"].min())
centre = (open_range["method"].nunique() - 1) / 2
for i, (method, group) in enumerate(open_range.groupby("method", sort=False)):
    x = group["eps"] + shift * (i - centre)
    ax.vlines(x, group["accuracy"], group["upper"], colors=palette[method], linestyles=":", lw=2)
ax.axvline(p.eps, color="grey", ls="--", lw=1)
ax.text(p.eps, 2, " training eps", color="grey", fontsize=9)
ax.set_xlabel("l_inf radius eps")
ax.set_ylabel("exact robust accuracy (%)")
ax.set_ylim(0, 100)
note = "\ndotted: up to the accuracy with every undecided point robust" if len(open_range) else ""
ax.set_title(f"exact robust accuracy (MILP) on {n_points} test points; band: range over seeds{note}", fontsize=10)
fig.tight_layout()
with atomic_path(snakemake.output[0]) as tmp:
    fig.savefig(tmp, dpi=150)
done(log, snakemake.output)
