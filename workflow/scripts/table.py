"""A results table (Table I on CIFAR-10, the digits and custom tables, or the squared-loss table): mean and
std over the seeds, as CSV, Markdown and a bar chart.

Columns: clean / FGSM / PGD accuracy (MSE for regression) from evaluate.py, AutoAttack and exact robust
accuracy from robustness.py (classification), and the training objective each method optimises (clean (13) /
(16) for Algorithm 1 and GD-STD; robust at the training eps for Algorithm 2, the robust linear control, GD-FGSM
and GD-PGD: exact by Theorem 4 on certified samples, PGD-estimated elsewhere). Seeds whose convex optimum is the
zero network ("degenerate") are counted and left out of the means: a zero network is not a 0 % result.
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


def label_and_seed(path):
    label = next(lab for lab, model in p.models.items() if f"/{model}/" in path)
    return label, int(path.split("/seed")[-1].split("/")[0])


def scalars(path):
    return {k: v for k, v in read_json(path).items() if isinstance(v, (int, float, bool)) or v is None}


records = {}
for path in [*snakemake.input.evals, *snakemake.input.robustness]:
    key = label_and_seed(path)
    records.setdefault(key, {"method": key[0], "seed": key[1]}).update(scalars(path))
raw = pd.DataFrame(list(records.values()))
raw["degenerate"] = raw["degenerate"].fillna(False).astype(bool)
# display name -> column of the per-seed results; a column only when some model has it
columns = {"clean": f"clean_{metric}", "fgsm": f"fgsm_{metric}", "pgd": f"pgd_{metric}",
           "autoattack": "autoattack_accuracy", "exact": "exact_robust_accuracy", "objective": "objective",
           "convex_objective": "convex_objective", "certified_fraction": "certified_fraction", "width": "width",
           "exact_undecided": "exact_undecided", "exact_points": "exact_points"}
columns = {short: col for short, col in columns.items() if col in raw}
percent = {"clean", "fgsm", "pgd", "autoattack", "exact"} if classification else set()
order = list(p.models)
rows = []
for method in order:
    part = raw[raw["method"] == method]
    valid = part[~part["degenerate"]]
    row = {"method": method, "model": p.models[method], "n_seeds": len(part), "degenerate_seeds": int(part["degenerate"].sum())}
    for short, col in columns.items():
        values = valid[col].astype(float).dropna()
        scale = 100.0 if short in percent else 1.0
        row[f"{short}_mean"] = scale * values.mean() if len(values) else np.nan
        # equal values: 0 exactly (pandas' formula leaves a rounding residue, printed as "1.241e-14%")
        spread = values.std(ddof=1) if values.nunique() > 1 else 0.0
        row[f"{short}_std"] = scale * spread if len(values) > 1 else np.nan
    rows.append(row)
table = pd.DataFrame(rows)
log.info("per-seed results:\n%s", raw.to_string(index=False))
log.info("summary:\n%s", table.to_string(index=False))


def cell(row, short):
    mean, std = row.get(f"{short}_mean", np.nan), row.get(f"{short}_std", np.nan)
    if np.isnan(mean):
        return "–"
    unit = " %" if short in percent else ""
    if np.isnan(std):
        return f"{mean:.4g}{unit}"
    return f"{mean:.4g}{unit} ({std:.4g}{unit.strip()})"


def seeds_cell(row):
    used = row["n_seeds"] - row["degenerate_seeds"]
    return f"{used}" if not row["degenerate_seeds"] else f"{used} of {row['n_seeds']} ({row['degenerate_seeds']} degenerate)"


shown = [s for s in ("clean", "fgsm", "pgd", "autoattack", "exact") if s in columns]
names = {"clean": "CLEAN", "fgsm": "FGSM ADV.", "pgd": "PGD ADV.", "autoattack": "AUTOATTACK", "exact": "EXACT ROBUST"}
headers = ["METHOD", "SEEDS", *[names[s] + ("" if classification else " MSE") for s in shown], "OBJECTIVE"]
lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
for _, r in table.iterrows():
    lines.append("| " + " | ".join([r["method"], seeds_cell(r), *[cell(r, s) for s in shown], cell(r, "objective")]) + " |")
seeds = ", ".join(map(str, p.seeds))
what = "accuracy" if classification else "mean squared error (standardised target)"
md = [f"Mean (std) over seeds {seeds} (degenerate seeds left out); test-set {what} at eps = {p.eps}: clean, FGSM, "
      "the paper's PGD (40 steps, gamma = eps/30)"
      + (", AutoAttack, and exact robust accuracy (MILP; undecided points count as not robust)" if classification else "")
      + ". OBJECTIVE: training objective of each method (clean for Algorithm 1 / GD-STD, robust at the training "
      "eps otherwise; exact by Theorem 4 where certified, PGD-estimated elsewhere).", "", *lines]
if "exact_points" in columns:
    subset = table.dropna(subset=["exact_points_mean"])
    undecided = subset["exact_undecided_mean"].fillna(0)
    md += ["", f"Exact verification: {int(subset['exact_points_mean'].max())} test points per network; "
           f"mean undecided points per network: {undecided.max():.3g} at most."]
if "convex_objective" in columns:
    md += ["", "Convex program optimum (an upper bound on the robust objective for Algorithm 2):", ""]
    for _, r in table.dropna(subset=["convex_objective_mean"]).iterrows():
        md.append(f"- {r['method']}: {cell(r, 'convex_objective')}")
degenerate = raw[raw["degenerate"]]
if len(degenerate):
    md += ["", "Degenerate seeds (the convex optimum is the zero network; not in the means):", ""]
    for _, r in degenerate.iterrows():
        reason = read_json(next(path for path in snakemake.input.evals
                                if label_and_seed(path) == (r["method"], r["seed"]))).get("degenerate_reason")
        md.append(f"- {r['method']}, seed {r['seed']}: {reason}")
if p.paper_table:
    paper_headers = ["METHOD", "CLEAN", "FGSM ADV.", "PGD ADV.", "OBJECTIVE"]
    md += ["", "Paper (Table I, seven runs, MOSEK):", "", "| " + " | ".join(paper_headers) + " |", "|" + "---|" * 5]
    md += ["| " + " | ".join([m, *v]) + " |" for m, v in PAPER_TABLE1.items()]

sns.set_theme(style="whitegrid")
valid = raw[~raw["degenerate"]]
value_columns = [columns[s] for s in shown]
long = valid.melt(id_vars=["method", "seed"], value_vars=value_columns, var_name="data", value_name=metric).dropna()
long["data"] = long["data"].map({columns[s]: names[s].replace(" ADV.", "").title() for s in shown})
if classification:
    long[metric] *= 100
fig, ax = plt.subplots(figsize=(max(9, 1.5 * len(order)), 4.6))
sns.barplot(data=long, x="method", y=metric, hue="data", order=order, errorbar="sd", ax=ax)
ax.set_ylabel("test accuracy (%)" if classification else "test MSE")
ax.set_xlabel("")
ax.tick_params(axis="x", labelrotation=20)
ax.set_title(f"eps = {p.eps}; mean and std over the non-degenerate of {len(p.seeds)} seeds")
fig.tight_layout()

with atomic_path(snakemake.output.csv) as tmp:
    table.to_csv(tmp, index=False)
with atomic_path(snakemake.output.md) as tmp, open(tmp, "w") as fh:
    fh.write("\n".join(md) + "\n")
with atomic_path(snakemake.output.png) as tmp:
    fig.savefig(tmp, dpi=150)
done(log, snakemake.output)
