"""Table I (classification, CIFAR-10) or the squared-loss table (regression): mean and std over the seeds.

OBJECTIVE is the training objective each method optimises, evaluated on its training set (see
evaluate.py): clean (13) / (16) for Algorithm 1 and GD-STD, robust (13) / (16) at the training eps for
Algorithm 2, GD-FGSM and GD-PGD (exact by Theorem 4 on certified samples, PGD-estimated elsewhere).
"""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from _common import done, read_json, start  # noqa: E402

from convexadv.io import atomic_path  # noqa: E402

# Table I of the paper: mean (std) over seven runs, accuracies in %
PAPER_TABLE1 = {
    "GD-STD": ("79.56 % (.4138%)", "47.09 % (.4290%)", "45.60 % (.4796%)", ".3146 (.01101)"),
    "GD-FGSM": ("75.30 % (3.104%)", "61.03 % (4.763%)", "60.99 % (4.769%)", ".8370 (6.681e-2)"),
    "GD-PGD": ("76.56 % (.6038%)", "62.48 % (.2215%)", "62.44 % (.1988%)", ".8220 (3.933e-3)"),
    "ALGORITHM 1": ("81.01 % (.8090%)", ".4857 % (.1842%)", ".3571 % (.1239%)", "6.910e-3 (3.020e-4)"),
    "ALGORITHM 2": ("78.36 % (.3250%)", "66.95 % (.4564%)", "66.81 % (0.4862%)", ".6511 (6.903e-3)"),
}

log = start(snakemake)
p = snakemake.params
classification = p.kind == "classification"
metric = "accuracy" if classification else "mse"
records = []
for path in snakemake.input.evals:
    label = next(lab for lab, model in p.models.items() if f"/{model}/" in path)
    seed = int(path.split("/seed")[-1].split("/")[0])
    records.append({"method": label, "seed": seed, **{k: v for k, v in read_json(path).items()
                                                       if not isinstance(v, (str, dict))}})
raw = pd.DataFrame(records)
columns = {"clean": f"clean_{metric}", "fgsm": f"fgsm_{metric}", "pgd": f"pgd_{metric}", "objective": "objective"}
extra = [c for c in ("convex_objective", "certified_fraction", "width") if c in raw]
order = list(p.models)
rows = []
for method in order:
    part = raw[raw["method"] == method]
    row = {"method": method, "model": p.models[method], "n_seeds": len(part)}
    for short, col in {**columns, **{c: c for c in extra}}.items():
        values = part[col].astype(float)
        scale = 100.0 if classification and short in ("clean", "fgsm", "pgd") else 1.0
        row[f"{short}_mean"] = scale * values.mean()
        row[f"{short}_std"] = scale * values.std(ddof=1) if len(values) > 1 else np.nan
    rows.append(row)
table = pd.DataFrame(rows)
log.info("per-seed results:\n%s", raw.to_string(index=False))
log.info("summary:\n%s", table.to_string(index=False))


def cell(mean, std, percent):
    if np.isnan(mean):
        return "–"
    unit = " %" if percent else ""
    if np.isnan(std):
        return f"{mean:.4g}{unit}"
    return f"{mean:.4g}{unit} ({std:.4g}{unit.strip()})"


if classification:
    headers = ["METHOD", "CLEAN", "FGSM ADV.", "PGD ADV.", "OBJECTIVE"]
else:
    headers = ["METHOD", "CLEAN MSE", "FGSM ADV. MSE", "PGD ADV. MSE", "OBJECTIVE"]
lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
for _, r in table.iterrows():
    cells = [cell(r[f"{s}_mean"], r[f"{s}_std"], classification) for s in ("clean", "fgsm", "pgd")]
    cells.append(cell(r["objective_mean"], r["objective_std"], False))
    lines.append("| " + " | ".join([r["method"], *cells]) + " |")
seeds = ", ".join(map(str, p.seeds))
what = "accuracy" if classification else "mean squared error (standardised target)"
md = [f"Mean (std) over seeds {seeds}; test-set {what} under FGSM / PGD (40 steps, gamma = eps/30) at "
      f"eps = {p.eps}. OBJECTIVE: training objective of each method (clean for Algorithm 1 / GD-STD, robust at "
      "the training eps otherwise; exact by Theorem 4 where certified, PGD-estimated elsewhere).", "", *lines]
if "convex_objective_mean" in table:
    md += ["", "Convex program optimum (upper bound on the robust objective for Algorithm 2):", ""]
    for _, r in table.dropna(subset=["convex_objective_mean"]).iterrows():
        md.append(f"- {r['method']}: {cell(r['convex_objective_mean'], r['convex_objective_std'], False)}")
if classification:
    md += ["", "Paper (Table I, seven runs, MOSEK):", "", "| " + " | ".join(headers) + " |", "|" + "---|" * 5]
    md += ["| " + " | ".join([m, *v]) + " |" for m, v in PAPER_TABLE1.items()]

sns.set_theme(style="whitegrid")
long = raw.melt(id_vars=["method", "seed"], value_vars=list(columns.values())[:3], var_name="data", value_name=metric)
long["data"] = long["data"].str.replace(f"_{metric}", "").map({"clean": "clean", "fgsm": "FGSM", "pgd": "PGD"})
if classification:
    long[metric] *= 100
fig, ax = plt.subplots(figsize=(9, 4.2))
sns.barplot(data=long, x="method", y=metric, hue="data", order=order, errorbar="sd", ax=ax)
ax.set_ylabel("test accuracy (%)" if classification else "test MSE")
ax.set_xlabel("")
ax.set_title(f"eps = {p.eps}; mean and std over {len(p.seeds)} seeds")
fig.tight_layout()

with atomic_path(snakemake.output.csv) as tmp:
    table.to_csv(tmp, index=False)
with atomic_path(snakemake.output.md) as tmp, open(tmp, "w") as fh:
    fh.write("\n".join(md) + "\n")
with atomic_path(snakemake.output.png) as tmp:
    fig.savefig(tmp, dpi=150)
done(log, snakemake.output)
