# Config validation, wildcard constraints, path helpers and seed lists.
import os
import sys

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version, validate

min_version("9.0")


validate(config, schema="../schemas/config.schema.yaml")


ENV = "../../envs/convexadv.yaml"

# binary image / tabular classification experiments: Table I's DAG (data, patterns, solves, GD baselines,
# evaluation, table, figures); `custom` only when config.yaml names a data set
CLASSIFICATION_EXPERIMENTS = tuple(e for e in ("cifar", "digits", "custom") if config.get(e))
# experiments trained through the generic data -> patterns -> solve_convex -> recover rules
CONVEX_EXPERIMENTS = (*CLASSIFICATION_EXPERIMENTS, "regression", "fig2")
# the table (and its figure) of each experiment with a table: results/tables/{name}.csv
TABLE_NAMES = {"cifar": "table1", "digits": "digits", "custom": "custom", "regression": "squared_loss"}
# Algorithm 2's pattern sampler -> the model kind in result paths (paper: the paths of Algorithm 1/2 as printed)
SAMPLER_KINDS = {"paper": "convex", "robust": "convex-robust"}


# The data rules' priority (Snakemake's default is 0; among the jobs ready to run it picks the highest priority,
# then the largest inputs, which puts the data jobs, with no input files, last): every data set is made first,
# so that no chain of patterns, solves and evaluations starts late. Measured on the pipeline without the exact
# evaluation: without it the last CIFAR seed's data was made 541 s into a 599 s run, and its solve ran alone.
DATA_PRIORITY = 1


wildcard_constraints:
    exp="cifar|digits|custom|regression|fig1|fig2",
    kind="convex|convex-robust|linear",
    seed=r"\d+",
    P=r"\d+",
    eps=r"[0-9][0-9.e+-]*",
    aeps=r"[0-9][0-9.e+-]*",
    width=r"\d+",
    method="std|fgsm|pgd",
    model=r"(convex|convex-robust|linear)/eps[0-9][0-9.e+-]*/P\d+|gd-(std|fgsm|pgd)/eps[0-9][0-9.e+-]*/m\d+",


def fmt(x):
    """How a number appears in a path: 10 -> '10', 0.08 -> '0.08', 0 -> '0'."""
    return f"{float(x):g}"


def repo_path(path):
    """Resolve a config path against the repository root (the directory of the Snakefile)."""
    path = os.path.expanduser(str(path))
    if os.path.isabs(path):
        return os.path.normpath(path)
    return os.path.normpath(os.path.join(workflow.basedir, path))


def exp_config(exp):
    return config[exp]


def custom_loader():
    """Keyword arguments of convexadv.data.load_custom for the custom experiment (paths resolved)."""
    cfg = config["custom"]
    return {
        "fmt": cfg["format"],
        "path": repo_path(cfg["path"]),
        "test_path": repo_path(cfg["test_path"]) if cfg.get("test_path") else None,
        "test_fraction": cfg.get("test_fraction", 0.3),
        "classes": cfg.get("classes"),
        "label_column": cfg.get("label_column"),
        "image_size": cfg.get("image_size"),
    }


def pair_loader(exp):
    """The data loader and its keyword arguments for the digits pair or the custom data set."""
    if exp == "digits":
        cfg = config["digits"]
        return {"kind": "digits", "digits": cfg["digits"], "test_fraction": cfg["test_fraction"]}
    return {"kind": "custom", **custom_loader()}


if "custom" in CLASSIFICATION_EXPERIMENTS:
    # a missing file, a label set that is not two classes, NaNs or a shape mismatch stop the run here,
    # before any job, with the config key named (an installed convexadv, or the repository's src/)
    sys.path.append(os.path.join(workflow.basedir, "src"))
    from convexadv.data import CustomDataError, check_custom

    try:
        check_custom(**custom_loader(), n_train=config["custom"].get("n_train"))
    except CustomDataError as error:
        raise WorkflowError(f"invalid custom data set in the config: {error}")


ALGORITHMS = ("algorithm1", "algorithm2")


def _algorithm(eps):
    return "algorithm1" if float(eps) == 0 else "algorithm2"


def solver(exp, eps=0.0):
    """The solver for one experiment and algorithm (eps = 0: Algorithm 1, else 2).

    An experiment's `solver` key (a name, or {algorithm1: ..., algorithm2: ...}) overrides the
    top-level `solver`; null or a missing entry falls back to it."""
    own = exp_config(exp).get("solver")
    if isinstance(own, dict):
        own = own.get(_algorithm(eps))
    return own or config["solver"]


def solver_options(exp, eps=0.0):
    """Solver options, overridden per experiment like `solver` (a dict keyed by algorithm1 / algorithm2
    gives each algorithm its own options)."""
    own = exp_config(exp).get("solver_options")
    if isinstance(own, dict) and own and set(own) <= set(ALGORITHMS):
        own = own.get(_algorithm(eps))
    return dict(config["solver_options"] if own is None else own)


def train_data(exp, seed):
    return f"results/{exp}/data/train_seed{seed}.npz"


def test_data(exp, seed):
    if exp in CLASSIFICATION_EXPERIMENTS:
        return f"results/{exp}/data/test.npz"
    if exp == "regression":
        return f"results/regression/data/test_seed{seed}.npz"
    raise ValueError(f"experiment {exp!r} has no test split")


def convex_model(exp, eps, sampler="paper"):
    """Model id (a path segment) of Algorithm 1 (eps = 0) or Algorithm 2 (eps > 0) with a pattern sampler."""
    cfg = exp_config(exp)
    kind = "convex" if float(eps) == 0 else SAMPLER_KINDS[sampler]
    n_patterns = cfg["n_patterns"]
    if kind == "convex-robust" and cfg.get("robust_n_patterns") is not None:
        n_patterns = cfg["robust_n_patterns"]
    return f"{kind}/eps{fmt(eps)}/P{n_patterns}"


def linear_model(exp):
    """The ROBUST LINEAR control: (15) / (18) with the all-active pattern alone."""
    return f"linear/eps{fmt(exp_config(exp)['eps'])}/P1"


def gd_model(exp, method):
    cfg = exp_config(exp)
    eps = 0 if method == "std" else cfg["eps"]
    return f"gd-{method}/eps{fmt(eps)}/m{cfg['gd']['width']}"


def models(exp):
    """{table label: model id} for an experiment, in the paper's row order, then the rows beyond it."""
    cfg = exp_config(exp)
    out = {f"GD-{m.upper()}": gd_model(exp, m) for m in ("std", "fgsm", "pgd") if m in cfg.get("gd", {}).get("methods", [])}
    out["ALGORITHM 1"] = convex_model(exp, 0)
    for sampler in cfg["samplers"]:
        out[f"ALGORITHM 2 ({sampler} sampler)"] = convex_model(exp, cfg["eps"], sampler)
    if cfg["robust_linear"]:
        out["ROBUST LINEAR"] = linear_model(exp)
    return out


def parse_model(model):
    """('convex' | 'convex-robust' | 'linear' | 'gd-pgd' ..., training eps) from a model id."""
    kind, eps, _ = model.split("/")
    return kind, float(eps[len("eps"):])


def seeds(exp):
    return list(exp_config(exp)["seeds"])


def eval_files(exp, name="eval"):
    """Every model's and seed's evaluation file of one kind: eval (clean / FGSM / PGD, objective) or
    robustness (AutoAttack and exact verification)."""
    eps = fmt(exp_config(exp)["eps"])
    return [
        f"results/{exp}/{model}/seed{seed}/{name}_eps{eps}.json"
        for model in models(exp).values()
        for seed in seeds(exp)
    ]


def image_shape(exp):
    """(channels, height, width) of an image experiment's features (for AutoAttack's Square), None for tabular data."""
    if exp == "cifar":
        return [3, config["cifar"]["image_size"], config["cifar"]["image_size"]]
    if exp == "digits":
        return [1, 8, 8]
    if exp == "custom" and config["custom"]["format"] == "imagefolder" and config["custom"].get("image_size"):
        return [3, config["custom"]["image_size"], config["custom"]["image_size"]]
    return None


def table_experiment(table):
    """The experiment behind a table name (TABLE_NAMES inverted)."""
    return next(exp for exp, name in TABLE_NAMES.items() if name == table)


def robustness_files(exp):
    """AutoAttack / exact-verification results for every model and seed (classification, when configured)."""
    if exp not in CLASSIFICATION_EXPERIMENTS:
        return []
    evaluation = exp_config(exp)["evaluation"]
    return eval_files(exp, "robustness") if evaluation["autoattack"] or evaluation["exact"] else []


def solution_files(exp):
    """The solutions of every convex model (Algorithm 1, Algorithm 2 per sampler, robust linear) and seed."""
    convex = [m for m in models(exp).values() if not m.startswith("gd-")] if exp != "fig2" else [
        convex_model(exp, eps) for eps in (0, exp_config(exp)["eps"])]
    return [f"results/{exp}/{model}/seed{seed}/solution.npz" for model in convex for seed in seeds(exp)]


def curve_files(exp):
    """Exact robust accuracy against eps, for every model and the curve's seeds."""
    return [
        f"results/{exp}/{model}/seed{seed}/robustness_curve.json"
        for model in models(exp).values()
        for seed in exp_config(exp)["evaluation"]["curve_seeds"]
    ]


def fig1_files():
    cfg = config["fig1"]
    return [f"results/fig1/seed{cfg['seed']}/P{P}.npz" for P in cfg["n_patterns"]]


def final_outputs():
    out = [
        "results/tables/certificates.csv",
        "results/tables/fig1.csv",
        "results/figures/fig1.png",
        "results/figures/fig2.png",
        "results/figures/fig3.png",
    ]
    for exp in (*CLASSIFICATION_EXPERIMENTS, "regression"):
        name = TABLE_NAMES[exp]
        out += [f"results/tables/{name}.csv", f"results/tables/{name}.md", f"results/figures/{name}.png"]
    for exp in CLASSIFICATION_EXPERIMENTS:
        if exp_config(exp)["evaluation"]["exact"] and exp_config(exp)["evaluation"]["curve_seeds"]:
            out.append(f"results/figures/{TABLE_NAMES[exp]}_robustness_curve.png")
    return out


def benchmark_setting(key, default):
    """A value of config.yaml's optional `benchmark` section (the solver benchmark)."""
    return config.get("benchmark", {}).get(key, default)


# image sizes s (d = 3 s^2 features) of the CIFAR-10 pair each benchmark preset needs
BENCHMARK_IMAGE_SIZES = {"quick": [2, 4], "paper": [2, 4, 7], "full": [2, 4, 7, 32]}
