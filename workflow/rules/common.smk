# Config validation, wildcard constraints, path helpers and seed lists.
import os

from snakemake.utils import min_version, validate

min_version("9.0")


validate(config, schema="../schemas/config.schema.yaml")


ENV = "../../envs/convexadv.yaml"

# experiments trained through the generic data -> patterns -> solve_convex -> recover rules
CONVEX_EXPERIMENTS = ("cifar", "regression", "fig2")


wildcard_constraints:
    exp="cifar|regression|fig1|fig2",
    seed=r"\d+",
    P=r"\d+",
    eps=r"[0-9][0-9.e+-]*",
    aeps=r"[0-9][0-9.e+-]*",
    width=r"\d+",
    method="std|fgsm|pgd",
    model=r"convex/eps[0-9][0-9.e+-]*/P\d+|gd-(std|fgsm|pgd)/eps[0-9][0-9.e+-]*/m\d+",


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
    if exp == "cifar":
        return "results/cifar/data/test.npz"
    if exp == "regression":
        return f"results/regression/data/test_seed{seed}.npz"
    raise ValueError(f"experiment {exp!r} has no test split")


def convex_model(exp, eps):
    """Model id (a path segment) of Algorithm 1 (eps = 0) or Algorithm 2 (eps > 0)."""
    return f"convex/eps{fmt(eps)}/P{exp_config(exp)['n_patterns']}"


def gd_model(exp, method):
    cfg = exp_config(exp)
    eps = 0 if method == "std" else cfg["eps"]
    return f"gd-{method}/eps{fmt(eps)}/m{cfg['gd']['width']}"


def models(exp):
    """{table label: model id} for an experiment, in the paper's row order."""
    cfg = exp_config(exp)
    out = {f"GD-{m.upper()}": gd_model(exp, m) for m in ("std", "fgsm", "pgd") if m in cfg.get("gd", {}).get("methods", [])}
    out["ALGORITHM 1"] = convex_model(exp, 0)
    out["ALGORITHM 2"] = convex_model(exp, cfg["eps"])
    return out


def parse_model(model):
    """('convex' | 'gd-pgd' ..., training eps) from a model id."""
    kind, eps, _ = model.split("/")
    return kind, float(eps[len("eps"):])


def seeds(exp):
    return list(exp_config(exp)["seeds"])


def eval_files(exp):
    eps = fmt(exp_config(exp)["eps"])
    return [
        f"results/{exp}/{model}/seed{seed}/eval_eps{eps}.json"
        for model in models(exp).values()
        for seed in seeds(exp)
    ]


def solution_files(exp):
    cfg = exp_config(exp)
    return [
        f"results/{exp}/{convex_model(exp, eps)}/seed{seed}/solution.npz"
        for eps in (0, cfg["eps"])
        for seed in seeds(exp)
    ]


def fig1_files():
    cfg = config["fig1"]
    return [f"results/fig1/seed{cfg['seed']}/P{P}.npz" for P in cfg["n_patterns"]]


def final_outputs():
    return [
        "results/tables/table1.csv",
        "results/tables/table1.md",
        "results/figures/table1.png",
        "results/tables/squared_loss.csv",
        "results/tables/squared_loss.md",
        "results/figures/squared_loss.png",
        "results/tables/certificates.csv",
        "results/tables/fig1.csv",
        "results/figures/fig1.png",
        "results/figures/fig2.png",
        "results/figures/fig3.png",
    ]


def benchmark_setting(key, default):
    """A value of config.yaml's optional `benchmark` section (the solver benchmark)."""
    return config.get("benchmark", {}).get(key, default)


# image sizes s (d = 3 s^2 features) of the CIFAR-10 pair each benchmark preset needs
BENCHMARK_IMAGE_SIZES = {"quick": [2, 4], "paper": [2, 4, 7], "full": [2, 4, 7, 32]}
