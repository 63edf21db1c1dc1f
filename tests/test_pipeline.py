"""The Snakemake pipeline on the small test configuration (tests/config/test_config.yaml).

(a) the whole DAG runs end to end in a temporary working directory and writes Table I, the figures
    and the HTML report; a second invocation has nothing to do;
(b) changing one parameter re-runs exactly the jobs downstream of it (Snakemake 9's default rerun
    triggers include params);
(c) a bad config fails with a schema error naming the key;
(d) `snakemake --lint` is clean.

The workflow runs from the repository's Snakefile with `--directory <tmp>`, so results/ and logs/ go to
the temporary directory; the CIFAR ImageFolder root `../shared/data/cifar10-jpeg` resolves against the
repository root.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
TEST_CONFIG = REPO / "tests" / "config" / "test_config.yaml"
SNAKEMAKE = shutil.which("snakemake", path=os.path.dirname(sys.executable)) or shutil.which("snakemake")

with open(TEST_CONFIG) as fh:
    _CONFIG = yaml.safe_load(fh)
DATA_ROOT = (REPO / _CONFIG["cifar"]["root"]).resolve()

pytestmark = [
    pytest.mark.skipif(SNAKEMAKE is None, reason="snakemake is not installed"),
    pytest.mark.skipif(not DATA_ROOT.is_dir(), reason=f"shared CIFAR-10 ImageFolder data missing at {DATA_ROOT}"),
]

FINAL = [
    "results/tables/table1.csv",
    "results/tables/table1.md",
    "results/figures/table1.png",
    "results/figures/table1_robustness_curve.png",
    "results/tables/digits.csv",
    "results/tables/digits.md",
    "results/figures/digits.png",
    "results/figures/digits_robustness_curve.png",
    "results/tables/squared_loss.csv",
    "results/tables/squared_loss.md",
    "results/figures/squared_loss.png",
    "results/tables/certificates.csv",
    "results/tables/fig1.csv",
    "results/figures/fig1.png",
    "results/figures/fig2.png",
    "results/figures/fig3.png",
]
# Table I's rows: the paper's five (Algorithm 2 once per pattern sampler) and the robust linear control
TABLE_ROWS = ["GD-STD", "GD-FGSM", "GD-PGD", "ALGORITHM 1", "ALGORITHM 2 (paper sampler)",
              "ALGORITHM 2 (robust sampler)", "ROBUST LINEAR"]
# convex models per classification seed: Algorithm 1, Algorithm 2 with each sampler, robust linear
N_CONVEX = 4


def snakemake(workdir, *args, configfile=TEST_CONFIG, check=True, timeout=900):
    cmd = [SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(configfile), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}")
    return proc


def job_counts(output: str) -> dict[str, int]:
    """The 'Job stats' table of a (dry) run as {rule: count}, without the total."""
    counts = {}
    if "Job stats:" not in output:
        return counts
    table = output.split("Job stats:", 1)[1]
    for line in table.splitlines()[3:]:
        match = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if not match:
            break
        if match.group(1) != "total":
            counts[match.group(1)] = int(match.group(2))
    return counts


def changed_config(tmp_path, name, edit):
    config = yaml.safe_load(TEST_CONFIG.read_text())
    edit(config)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("pipeline")
    proc = snakemake(workdir, "--cores", "2")
    return workdir, proc


@pytest.mark.slow
def test_whole_dag_runs_end_to_end(finished_run):
    workdir, proc = finished_run
    for target in FINAL:
        assert (workdir / target).stat().st_size > 0, target
    import pandas as pd

    for name, exp in (("table1", "cifar"), ("digits", "digits")):
        table = pd.read_csv(workdir / f"results/tables/{name}.csv")
        assert list(table["method"]) == TABLE_ROWS
        assert (table["n_seeds"] == len(_CONFIG[exp]["seeds"])).all()
        for column in ("clean_mean", "fgsm_mean", "pgd_mean", "autoattack_mean", "exact_mean"):
            values = table[column].dropna()
            assert len(values) and values.between(0, 100).all(), column
        if _CONFIG[exp]["evaluation"]["exact_points"] is None:
            # on the same points, exact robust accuracy never exceeds what an attack leaves (undecided points
            # count as not robust)
            both = table.dropna(subset=["exact_mean", "pgd_mean", "autoattack_mean"])
            assert (both["exact_mean"] <= both[["pgd_mean", "autoattack_mean"]].min(axis=1) + 1e-9).all()
        # degenerate seeds are counted and left out of the means: a row has numbers unless all its seeds are
        partly = table[table["degenerate_seeds"] < table["n_seeds"]]
        assert partly["clean_mean"].notna().all()
    certificates = pd.read_csv(workdir / "results/tables/certificates.csv")
    assert certificates["status"].isin(["optimal", "degenerate"]).all()
    assert certificates.loc[certificates["status"] == "degenerate", "degenerate_reason"].notna().all()
    n_classification = len(_CONFIG["cifar"]["seeds"]) + len(_CONFIG["digits"]["seeds"])
    assert len(certificates) == (N_CONVEX * (n_classification + len(_CONFIG["regression"]["seeds"]))
                                 + 2 * len(_CONFIG["fig2"]["seeds"]))
    # the robust sampler's patterns are all usable under (11); the control's single pattern is all-active
    robust = certificates[certificates["path"].str.contains("/convex-robust/")]
    assert (robust["patterns_usable"] == robust["n_patterns"]).all()
    cifar_robust = robust[robust["path"].str.startswith("results/cifar/")]
    assert len(cifar_robust) and (cifar_robust["n_patterns"] == _CONFIG["cifar"]["robust_n_patterns"]).all()
    linear = certificates[certificates["path"].str.contains("/linear/")]
    assert (linear["n_patterns"] == 1).all() and (linear["patterns_splitting"] == 0).all()
    # every job logged under logs/ and benchmarked; the solver's certificate is in the solve log
    solve_logs = list((workdir / "logs").rglob("solve.log"))
    assert solve_logs and all("certificate: solver" in p.read_text() for p in solve_logs)
    assert list((workdir / "results/benchmarks").rglob("*.tsv"))
    # no temporary files of the atomic writers are left behind
    assert not list((workdir / "results").rglob(".tmp-*"))
    # nothing left to do
    again = snakemake(workdir, "--dry-run")
    assert "Nothing to be done" in again.stdout + again.stderr


@pytest.mark.slow
def test_html_report_holds_every_figure_and_table(finished_run):
    workdir, _ = finished_run
    report = workdir / "report.html"
    snakemake(workdir, "--report", str(report))
    html = report.read_text(errors="replace")
    for name in ("table1.csv", "fig1.png", "fig2.png", "fig3.png", "squared_loss.csv", "certificates.csv"):
        assert name in html, name


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, edit, expected",
    [
        # Figure 2's beta: both fig2 solves, their recoveries, Figures 2 and 3 and the certificate table
        ("fig2_beta", lambda c: c["fig2"].update(beta=1e-8),
         {"solve_convex": 2, "recover": 2, "fig2": 1, "fig3": 1, "certificates": 1, "all": 1}),
        # the GD baselines' epochs: the 3 baselines (one seed), their evaluations (attacks, exact verification,
        # the robustness curve), Table I and its curve figure
        ("cifar_epochs", lambda c: c["cifar"]["gd"].update(epochs=c["cifar"]["gd"]["epochs"] + 1),
         {"baseline": 3, "evaluate": 3, "robustness": 3, "robustness_curve": 3, "table": 1,
          "robustness_curve_figure": 1, "all": 1}),
        # the paper's PGD steps: every CIFAR evaluation (7 models, one seed) and Table I only
        ("cifar_attack", lambda c: c["cifar"]["attack"].update(n_steps=c["cifar"]["attack"]["n_steps"] + 1),
         {"evaluate": 7, "table": 1, "all": 1}),
        # the solver of Algorithm 2 on CIFAR only (Algorithm 1 keeps "fast"): the eps > 0 programs (paper and
        # robust sampler, robust linear control) and what follows from them
        ("cifar_alg2_solver", lambda c: c["cifar"].update(solver={"algorithm1": "fast", "algorithm2": "scs"}),
         {"solve_convex": 3, "recover": 3, "evaluate": 3, "robustness": 3, "robustness_curve": 3, "certificates": 1,
          "table": 1, "robustness_curve_figure": 1, "all": 1}),
        # the exact verifier's time limit on digits: its 7 verifications and 7 curves, the digits table and figure
        ("digits_exact_time", lambda c: c["digits"]["evaluation"].update(exact_time_limit=6.0),
         {"robustness": 7, "robustness_curve": 7, "table": 1, "robustness_curve_figure": 1, "all": 1}),
        # Figure 3's grid: only Figure 3
        ("fig3_grid", lambda c: c["fig3"].update(grid=c["fig3"]["grid"] + 2), {"fig3": 1, "all": 1}),
        # the number of Figure 1 repeats: the sweeps and Figure 1
        ("fig1_repeats", lambda c: c["fig1"].update(repeats=c["fig1"]["repeats"] + 1),
         {"fig1_sweep": len(_CONFIG["fig1"]["n_patterns"]), "fig1": 1, "all": 1}),
    ],
)
def test_changed_parameter_reruns_exactly_downstream_jobs(finished_run, tmp_path, name, edit, expected):
    workdir, _ = finished_run
    config = changed_config(tmp_path, name, edit)
    dry = snakemake(workdir, "--dry-run", configfile=config)
    assert job_counts(dry.stdout) == expected, dry.stdout[-3000:]
    changes = snakemake(workdir, "--list-changes", "params", configfile=config)
    listed = {line.strip() for line in changes.stdout.splitlines() if line.strip().startswith("results/")}
    assert listed, changes.stdout
    # the files whose params changed are exactly the outputs of the first jobs in the changed chain
    first_rule = next(iter(expected))
    assert len(listed) >= expected[first_rule]


def test_quick_start_profile_plans_the_same_dag(tmp_path):
    """The README's Quick start runs with workflow/profiles/default: it must parse and plan the same jobs."""
    plain = job_counts(snakemake(tmp_path, "--dry-run").stdout)
    profiled = snakemake(tmp_path, "--profile", str(REPO / "workflow" / "profiles" / "default"), "--cores", "2",
                         "--dry-run")
    assert plain and job_counts(profiled.stdout) == plain


def test_unchanged_config_is_stable_in_a_fresh_dir(tmp_path):
    """A dry run plans the full DAG and the job counts follow from the config."""
    dry = snakemake(tmp_path, "--dry-run")
    counts = job_counts(dry.stdout)
    n_cifar, n_digits, n_reg = (len(_CONFIG[e]["seeds"]) for e in ("cifar", "digits", "regression"))
    gd = {e: len(_CONFIG[e]["gd"]["methods"]) for e in ("cifar", "digits", "regression")}
    assert counts["solve_convex"] == N_CONVEX * (n_cifar + n_digits + n_reg) + 2 * len(_CONFIG["fig2"]["seeds"])
    assert counts["patterns"] == counts["solve_convex"] == counts["recover"]
    assert counts["baseline"] == gd["cifar"] * n_cifar + gd["digits"] * n_digits + gd["regression"] * n_reg
    models = {e: gd[e] + N_CONVEX for e in gd}
    assert counts["evaluate"] == models["cifar"] * n_cifar + models["digits"] * n_digits + models["regression"] * n_reg
    assert counts["robustness"] == models["cifar"] * n_cifar + models["digits"] * n_digits
    curve_seeds = {e: len(_CONFIG[e]["evaluation"]["curve_seeds"]) for e in ("cifar", "digits")}
    assert counts["robustness_curve"] == models["cifar"] * curve_seeds["cifar"] + models["digits"] * curve_seeds["digits"]
    assert counts["table"] == 3 and counts["robustness_curve_figure"] == 2
    assert counts["fig1_sweep"] == len(_CONFIG["fig1"]["n_patterns"])


def test_solver_benchmarks_plan_their_data(tmp_path):
    """Both benchmark targets (sizes, and time vs surviving patterns) plan one job each over the shared
    downsampled training sets: s = 2, 4, 7 for the default preset, the pattern sweep reusing s = 7."""
    dry = snakemake(tmp_path, "--dry-run", "solver_benchmark", "solver_benchmark_patterns")
    assert job_counts(dry.stdout) == {"solver_benchmark_data": 3, "solver_benchmark": 1,
                                      "solver_benchmark_patterns": 1}, dry.stdout[-3000:]


def _custom_data(tmp_path):
    """A small two-class tabular data set saved as .npz, labels 'a' / 'b'."""
    import numpy as np

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4))
    labels = np.where(X[:, 0] + 0.5 * X[:, 1] > 0, "a", "b")
    path = tmp_path / "mine.npz"
    np.savez(path, X=X, y=labels)
    return path


def _with_custom(config, data_file, **changes):
    custom = {key: config["digits"][key] for key in ("seeds", "loss", "bias", "beta", "n_patterns", "n_perturbations",
                                                    "samplers", "robust_linear", "solver", "solver_options", "attack",
                                                    "gd", "evaluation")}
    custom.update(format="npz", path=str(data_file), test_fraction=0.3, n_train=20, eps=0.05)
    custom.update(changes)
    config["custom"] = custom


@pytest.mark.slow
def test_custom_data_set_gets_the_whole_dag(tmp_path):
    path = _custom_data(tmp_path)
    config = changed_config(tmp_path, "custom", lambda c: _with_custom(c, path))
    snakemake(tmp_path, "--cores", "2", "results/tables/custom.csv", "results/figures/custom_robustness_curve.png",
              configfile=config)
    import pandas as pd

    table = pd.read_csv(tmp_path / "results/tables/custom.csv")
    assert list(table["method"]) == TABLE_ROWS
    assert table["clean_mean"].notna().any()
    dry = snakemake(tmp_path, "--dry-run", configfile=config)
    assert job_counts(dry.stdout)["table"] == 3  # the custom table is done; Table I, digits, regression remain


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"path": "no/such/file.npz"}, "custom.path: no such file"),
        ({"classes": ["a", "z"]}, "not among custom.classes"),
    ],
    ids=["missing-file", "wrong-classes"],
)
def test_bad_custom_data_fails_before_any_job(tmp_path, changes, message):
    path = _custom_data(tmp_path)
    config = changed_config(tmp_path, "bad_custom", lambda c: _with_custom(c, path, **changes))
    proc = snakemake(tmp_path, "--dry-run", configfile=config, check=False)
    assert proc.returncode != 0
    output = proc.stdout + proc.stderr
    assert message in output, output[-3000:]
    assert "Job stats" not in output and not (tmp_path / "results").exists()


@pytest.mark.parametrize(
    "edit, key",
    [
        (lambda c: c["cifar"].update(eps="ten"), "eps"),
        (lambda c: c["fig2"].update(beta=-1.0), "beta"),
        (lambda c: c.update(solver="gurobi"), "solver"),
        (lambda c: c["cifar"]["gd"].update(epoch=3), "epoch"),  # a typo: unknown keys are rejected
        (lambda c: c["fig1"].update(n_patterns=[4, "many"]), "n_patterns"),
    ],
)
def test_bad_config_fails_naming_the_key(tmp_path, edit, key):
    config = changed_config(tmp_path, "bad", edit)
    proc = snakemake(tmp_path, "--dry-run", configfile=config, check=False)
    assert proc.returncode != 0
    message = proc.stdout + proc.stderr
    assert "Error validating config" in message or "ValidationError" in message, message[-2000:]
    assert key in message


def test_lint_is_clean(tmp_path):
    proc = snakemake(tmp_path, "--lint", check=False)
    message = proc.stdout + proc.stderr
    assert proc.returncode == 0, message[-4000:]
    assert "Congratulations" in message, message[-4000:]


def test_every_rule_declares_threads_resources_and_log():
    """The SLURM profile relies on threads, resources mem_mb / runtime and a log under logs/ on every rule."""
    text = "\n".join(p.read_text() for p in sorted((REPO / "workflow" / "rules").glob("*.smk")))
    rules = re.split(r"^rule (\w+):", text, flags=re.M)[1:]
    assert rules
    for name, body in zip(rules[::2], rules[1::2]):
        for needle in ("threads:", "mem_mb=", "runtime=", "log:", '"logs/', "benchmark:"):
            assert needle in body, f"rule {name} lacks {needle}"


def test_failed_job_leaves_no_output_and_logs_why(tmp_path):
    config = changed_config(tmp_path, "missing_data", lambda c: c["cifar"].update(root=str(tmp_path / "nowhere")))
    proc = snakemake(tmp_path, "--cores", "1", "results/cifar/data/test.npz", configfile=config, check=False)
    assert proc.returncode != 0
    assert not (tmp_path / "results/cifar/data/test.npz").exists()
    assert not list(tmp_path.rglob(".tmp-*"))
    log = (tmp_path / "logs/cifar/data/test.log").read_text()
    assert "no ImageFolder split" in log and "Traceback" in log
