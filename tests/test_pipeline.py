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
    "results/tables/squared_loss.csv",
    "results/tables/squared_loss.md",
    "results/figures/squared_loss.png",
    "results/tables/certificates.csv",
    "results/tables/fig1.csv",
    "results/figures/fig1.png",
    "results/figures/fig2.png",
    "results/figures/fig3.png",
]


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

    table = pd.read_csv(workdir / "results/tables/table1.csv")
    assert list(table["method"]) == ["GD-STD", "GD-FGSM", "GD-PGD", "ALGORITHM 1", "ALGORITHM 2"]
    assert (table["n_seeds"] == len(_CONFIG["cifar"]["seeds"])).all()
    for column in ("clean_mean", "fgsm_mean", "pgd_mean"):
        assert table[column].between(0, 100).all()
    certificates = pd.read_csv(workdir / "results/tables/certificates.csv")
    assert (certificates["status"] == "optimal").all()
    assert len(certificates) == 2 * (len(_CONFIG["cifar"]["seeds"]) + len(_CONFIG["regression"]["seeds"])
                                     + len(_CONFIG["fig2"]["seeds"]))
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
        # the GD baselines' epochs: the 3 baselines x 2 seeds, their evaluations and Table I
        ("cifar_epochs", lambda c: c["cifar"]["gd"].update(epochs=c["cifar"]["gd"]["epochs"] + 1),
         {"baseline": 6, "evaluate": 6, "table1": 1, "all": 1}),
        # the attack's PGD steps: every CIFAR evaluation and Table I only
        ("cifar_attack", lambda c: c["cifar"]["attack"].update(n_steps=c["cifar"]["attack"]["n_steps"] + 1),
         {"evaluate": 10, "table1": 1, "all": 1}),
        # the solver of Algorithm 2 on CIFAR only (Algorithm 1 keeps config.yaml's "fast"): its 2 solves
        # and what follows from them
        ("cifar_alg2_solver", lambda c: c["cifar"].update(solver={"algorithm1": "fast", "algorithm2": "scs"}),
         {"solve_convex": 2, "recover": 2, "evaluate": 2, "certificates": 1, "table1": 1, "all": 1}),
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


def test_unchanged_config_is_stable_in_a_fresh_dir(tmp_path):
    """A dry run plans the full DAG and the job counts follow from the config."""
    dry = snakemake(tmp_path, "--dry-run")
    counts = job_counts(dry.stdout)
    n_cifar, n_reg = len(_CONFIG["cifar"]["seeds"]), len(_CONFIG["regression"]["seeds"])
    n_gd_cifar, n_gd_reg = len(_CONFIG["cifar"]["gd"]["methods"]), len(_CONFIG["regression"]["gd"]["methods"])
    assert counts["solve_convex"] == 2 * (n_cifar + n_reg + len(_CONFIG["fig2"]["seeds"]))
    assert counts["baseline"] == n_gd_cifar * n_cifar + n_gd_reg * n_reg
    assert counts["evaluate"] == (2 + n_gd_cifar) * n_cifar + (2 + n_gd_reg) * n_reg
    assert counts["fig1_sweep"] == len(_CONFIG["fig1"]["n_patterns"])


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
