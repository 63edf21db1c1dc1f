"""Figure 1: the random n = 40 data set with Algorithm 1's decision region (largest P_s, best repeat),
and the optimised training loss against P_s (mean, error bars = best and worst of the repeats)."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from _common import done, start  # noqa: E402
from _plotting import decision_region, training_points  # noqa: E402

from convexadv.data import Dataset  # noqa: E402
from convexadv.io import atomic_path  # noqa: E402
from convexadv.network import ReLUNetwork  # noqa: E402
from convexadv.patterns import confidence_level  # noqa: E402

log = start(snakemake)
train = Dataset.load(snakemake.input.train)
n = train.X.shape[0]
rows, networks = [], {}
for path in snakemake.input.sweeps:
    with np.load(path) as f:
        P = int(f["n_patterns"])
        obj = f["objective"]
        rows.append({"P_s": P, "repeats": obj.size, "mean_objective": obj.mean(), "best_objective": obj.min(),
                     "worst_objective": obj.max(), "std_objective": obj.std(),
                     "mean_distinct_patterns": f["n_found"].mean(),
                     "confidence_psi_xi": confidence_level(n, P), "max_violation": f["max_violation"].max(),
                     "mean_solve_time_s": f["solve_time"].mean(), "solver": str(f["solver"])})
        networks[P] = ReLUNetwork(U=f["U"], alpha=f["alpha"], bias=bool(f["bias"]))
table = pd.DataFrame(rows).sort_values("P_s")
log.info("Figure 1 data:\n%s", table.to_string(index=False))

sns.set_theme(style="whitegrid")
fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.6))
P_max = int(table["P_s"].max())
decision_region(left, networks[P_max], train.X)
training_points(left, train.X, train.y)
left.set_title(f"n = {n} random points, Algorithm 1 (P_s = {P_max})")
left.grid(False)
yerr = np.vstack([table["mean_objective"] - table["best_objective"], table["worst_objective"] - table["mean_objective"]])
right.errorbar(table["P_s"], table["mean_objective"], yerr=yerr, fmt="o-", capsize=4)
right.set_xscale("log", base=2)
right.set_xlabel("number of sampled patterns P_s")
right.set_ylabel("optimised training loss (8)")
right.set_title(f"mean over {int(table['repeats'].iloc[0])} runs; bars: best / worst")
fig.tight_layout()
with atomic_path(snakemake.output.png) as tmp:
    fig.savefig(tmp, dpi=150)
with atomic_path(snakemake.output.csv) as tmp:
    table.to_csv(tmp, index=False)
done(log, snakemake.output)
