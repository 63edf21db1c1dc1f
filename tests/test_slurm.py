"""End-to-end test of the pipeline on a real (single-node) SLURM cluster.

* ``tests/slurm/setup_slurm.sh`` installs and starts munge/slurmctld/slurmd
  on this machine (root, Debian); when it cannot (exit 3) the test is skipped
  with the script's reason, unless CONVEXADV_REQUIRE_SLURM=1, when it fails.
* Table I's chain of the small test config (``tests/config/test_config.yaml``:
  data, baselines, patterns, convex solves, recovery, attacks, exact
  verification, the table; TARGETS) is run twice, at
  the same time, each into its own temporary working directory
  (``--directory``; the repo's results/, logs/ and .snakemake/ are never
  touched):
    - through SLURM:  ``snakemake --profile workflow/profiles/slurm``
    - locally:        ``snakemake --cores 2``
  both with a minimal environment: no PYTHONPATH, PATH is the venv's bin
  plus the system dirs, cwd outside the repo -- the jobs must get the package
  from the ``convexadv`` distribution installed in the venv.
* It asserts that every non-local job went through SLURM (the controller's
  job-completion log lists it under this run's name, COMPLETED, and the job
  comment names the same rule), that GPU rules requested a GPU, that all logs
  are under logs/, and that both runs produced the same numeric artifacts.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

pytestmark = pytest.mark.slurm

REPO = Path(__file__).resolve().parents[1]
# For developing the test against another checkout/workflow only.
ROOT = Path(os.environ.get("CONVEXADV_SLURM_TEST_ROOT", REPO)).resolve()
SETUP = REPO / "tests" / "slurm" / "setup_slurm.sh"
PROFILE = Path("workflow/profiles/slurm")
TEST_CONFIG = Path("tests/config/test_config.yaml")
RUN_TIMEOUT = int(os.environ.get("CONVEXADV_SLURM_TEST_TIMEOUT", "900"))
# Table I and everything upstream of it: every kind of job (torch, cvxpy, the fast solver, HiGHS) in ~30
# jobs; the whole DAG runs locally in tests/test_pipeline.py (each SLURM job pays its own start-up)
TARGETS = ["results/tables/table1.csv"]

# keys / columns whose values legitimately differ between two runs: wall-clock
# timings, hosts, and free-text messages that quote timings
VOLATILE = re.compile(
    r"(^|[_\s.(-])(time|times|seconds?|secs?|elapsed|duration|wall|walltime|"
    r"runtime|timestamp|date|datetime|host|hostname|node|nodename|pid|message|msg)"
    r"($|[_\s.()\[-])",
    re.I,
)
RTOL = ATOL = 1e-12


def _skip_or_fail(reason: str):
    if os.environ.get("CONVEXADV_REQUIRE_SLURM") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


# --------------------------------------------------------------- fixtures --
@pytest.fixture(scope="module")
def slurm_cluster():
    if not SETUP.exists():
        pytest.fail(f"{SETUP} missing")
    try:
        r = subprocess.run(
            ["bash", str(SETUP)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=900,
        )
    except subprocess.TimeoutExpired:
        _skip_or_fail("setup_slurm.sh timed out")
    if r.returncode == 3:
        lines = [l for l in r.stderr.strip().splitlines() if l.strip()]
        _skip_or_fail(lines[-1] if lines else "setup_slurm.sh: SLURM unavailable")
    assert r.returncode == 0, f"setup_slurm.sh failed ({r.returncode}):\n{r.stderr}"
    cfg = subprocess.run(
        ["scontrol", "show", "config"], capture_output=True, text=True, check=True
    ).stdout
    m = re.search(r"^JobCompLoc\s*=\s*(\S+)", cfg, re.M)
    assert m, "JobCompLoc not configured"
    return {"jobcomp": Path(m.group(1))}


@pytest.fixture(scope="module")
def pipeline():
    missing = [p for p in ("Snakefile", str(TEST_CONFIG)) if not (ROOT / p).exists()]
    if missing:
        pytest.skip(f"pipeline not there yet: missing {', '.join(missing)}")
    if not (ROOT / PROFILE / "config.yaml").exists():
        pytest.fail(f"{PROFILE}/config.yaml missing")
    for mod in ("snakemake", "snakemake_executor_plugin_slurm", "convexadv", "yaml"):
        pytest.importorskip(mod)
    import yaml

    cfg = yaml.safe_load((ROOT / TEST_CONFIG).read_text()) or {}
    cifar = cfg.get("cifar") or {}
    if cifar.get("source") == "imagefolder" and cifar.get("root"):
        data = (ROOT / str(cifar["root"])).resolve()  # resolved against the repo, as the Snakefile does
        if not data.is_dir():
            pytest.skip(f"shared CIFAR-10 ImageFolder data missing at {data}")
    return ROOT


def _clean_env() -> dict:
    """A login-shell-like environment that does not leak the test's state."""
    venv_bin = str(Path(sys.executable).parent)
    env = {
        "PATH": os.pathsep.join(
            [venv_bin, "/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]
        ),
        "HOME": os.environ.get("HOME", "/root"),
        "USER": os.environ.get("USER", "root"),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
    }
    for k in ("TMPDIR", "TZ"):
        if k in os.environ:
            env[k] = os.environ[k]
    assert "PYTHONPATH" not in env
    return env


class _Run:
    """`python -m snakemake ARGS` in the background, output to a file."""

    def __init__(self, args, workdir: Path, logfile: Path):
        workdir.mkdir(parents=True, exist_ok=True)
        self.cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"),
                    "--directory", str(workdir), *args]
        self.logfile = logfile
        self.t0 = time.time()
        self.fh = open(logfile, "w")
        self.fh.write("$ " + " ".join(self.cmd) + "\n")
        self.fh.flush()
        self.proc = subprocess.Popen(
            self.cmd,
            cwd=workdir,  # not the repo: nothing importable from the checkout
            env=_clean_env(),
            stdin=subprocess.DEVNULL,
            stdout=self.fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def wait(self, deadline: float) -> tuple[int, str, float]:
        try:
            rc = self.proc.wait(timeout=max(1.0, deadline - time.time()))
        except subprocess.TimeoutExpired:
            self.kill()  # SIGINT: snakemake cancels its SLURM jobs
            rc = None
        finally:
            self.fh.close()
        out = self.logfile.read_text(errors="replace")
        if rc is None:
            m = re.search(r"SLURM run ID: (\S+)", out)
            if m:
                subprocess.run(["scancel", "--name", m.group(1)], check=False)
            pytest.fail(f"snakemake timed out after {RUN_TIMEOUT}s:\n$ {' '.join(self.cmd)}\n{out[-6000:]}")
        return rc, out, time.time() - self.t0


def _parse_kv(line: str) -> dict:
    return dict(
        tok.split("=", 1) for tok in line.split() if "=" in tok
    )


def _load_profile() -> dict:
    import yaml

    return yaml.safe_load((ROOT / PROFILE / "config.yaml").read_text()) or {}


# ----------------------------------------------------------- comparisons --
def _produced_files(workdir: Path) -> set:
    out = set()
    for p in workdir.rglob("*"):
        if not p.is_file():
            continue
        rel = p.relative_to(workdir)
        top = rel.parts[0]
        if top in (".snakemake", "logs"):
            continue
        if "benchmark" in str(rel):  # `benchmark:` files are timings
            continue
        out.add(rel)
    return out


def _assert_close(a, b, what: str):
    import numpy as np

    a = np.asarray(a)
    b = np.asarray(b)
    assert a.shape == b.shape, f"{what}: shape {a.shape} != {b.shape}"
    if a.dtype.kind in "fc" or b.dtype.kind in "fc":
        assert np.allclose(a, b, rtol=RTOL, atol=ATOL, equal_nan=True), (
            f"{what}: max |diff| = {np.nanmax(np.abs(a.astype(complex) - b.astype(complex)))}"
        )
    else:
        assert np.array_equal(a, b), f"{what}: arrays differ"


def _compare_npz(a: Path, b: Path, rel):
    import numpy as np

    with np.load(a, allow_pickle=False) as fa, np.load(b, allow_pickle=False) as fb:
        assert sorted(fa.files) == sorted(fb.files), f"{rel}: keys differ"
        for k in fa.files:
            if VOLATILE.search(k):
                continue
            _assert_close(fa[k], fb[k], f"{rel}[{k}]")


def _compare_table(a: Path, b: Path, rel):
    import pandas as pd

    sep = "\t" if a.suffix == ".tsv" else ","
    ta = pd.read_csv(a, sep=sep)
    tb = pd.read_csv(b, sep=sep)
    assert list(ta.columns) == list(tb.columns), f"{rel}: columns differ"
    assert len(ta) == len(tb), f"{rel}: {len(ta)} != {len(tb)} rows"
    for c in ta.columns:
        if VOLATILE.search(str(c)):
            continue
        ca, cb = ta[c], tb[c]
        if pd.api.types.is_numeric_dtype(ca) and pd.api.types.is_numeric_dtype(cb):
            _assert_close(ca.to_numpy(float), cb.to_numpy(float), f"{rel}[{c}]")
        else:
            assert ca.astype(str).tolist() == cb.astype(str).tolist(), f"{rel}[{c}] differs"


def _compare_json(x, y, where):
    if isinstance(x, dict):
        assert isinstance(y, dict) and sorted(x) == sorted(y), f"{where}: keys differ"
        for k in x:
            if not VOLATILE.search(str(k)):
                _compare_json(x[k], y[k], f"{where}.{k}")
    elif isinstance(x, list):
        assert isinstance(y, list) and len(x) == len(y), f"{where}: lengths differ"
        for i, (u, v) in enumerate(zip(x, y)):
            _compare_json(u, v, f"{where}[{i}]")
    elif isinstance(x, float) or isinstance(y, float):
        assert math.isclose(x, y, rel_tol=RTOL, abs_tol=ATOL) or (
            math.isnan(x) and math.isnan(y)
        ), f"{where}: {x} != {y}"
    else:
        assert x == y, f"{where}: {x!r} != {y!r}"


def _compare_outputs(slurm_dir: Path, local_dir: Path) -> int:
    import numpy as np

    fs = _produced_files(slurm_dir)
    fl = _produced_files(local_dir)
    assert fs == fl, (
        f"different files: only SLURM {sorted(map(str, fs - fl))}, "
        f"only local {sorted(map(str, fl - fs))}"
    )
    compared = 0
    for rel in sorted(fs):
        a, b = slurm_dir / rel, local_dir / rel
        suf = rel.suffix.lower()
        if suf == ".npz":
            _compare_npz(a, b, rel)
        elif suf == ".npy":
            _assert_close(np.load(a), np.load(b), str(rel))
        elif suf in (".csv", ".tsv"):
            _compare_table(a, b, rel)
        elif suf == ".json":
            _compare_json(json.loads(a.read_text()), json.loads(b.read_text()), str(rel))
        else:
            continue  # figures, pickles, ... : presence only
        compared += 1
    return compared


# ------------------------------------------------------------------ test --
def test_pipeline_on_slurm_matches_local(slurm_cluster, pipeline, tmp_path):
    env = _clean_env()
    # the jobs import the installed package, not the checkout's src/ via PYTHONPATH
    chk = subprocess.run(
        [sys.executable, "-c", "import convexadv, sys; print(convexadv.__file__)"],
        cwd=tmp_path, env=env, capture_output=True, text=True,
    )
    assert chk.returncode == 0, f"convexadv is not installed in {sys.prefix}:\n{chk.stderr}"

    ncpu = os.cpu_count() or 2
    slurm_dir, local_dir = tmp_path / "slurm", tmp_path / "local"
    common = [*TARGETS, "--configfile", str(ROOT / TEST_CONFIG), "--max-threads", str(ncpu)]
    deadline = time.time() + RUN_TIMEOUT
    # both at once: the SLURM run spends much of its time waiting for the scheduler
    local = _Run(["--cores", "2", *common], local_dir, tmp_path / "local.log")
    slurm = _Run(
        [
            "--profile", str(ROOT / PROFILE),
            *common,
            "--retries", "0",
            # poll fast: the test jobs take seconds, not hours
            "--slurm-init-seconds-before-status-checks", "2",
            "--seconds-between-status-checks", "2",
        ],
        slurm_dir,
        tmp_path / "slurm.log",
    )
    try:
        rc, out, t_slurm = slurm.wait(deadline)
        rc_l, out_l, t_local = local.wait(deadline)
    finally:
        slurm.kill()
        local.kill()
    print(f"SLURM run {t_slurm:.0f}s; both runs (concurrent) done after {t_local:.0f}s")
    assert rc == 0, f"SLURM run failed ({rc}):\n{out[-8000:]}"
    assert rc_l == 0, f"local run failed ({rc_l}):\n{out_l[-8000:]}"

    # ---- the jobs went through SLURM ------------------------------------
    m = re.search(r"SLURM run ID: (\S+)", out)
    assert m, "no 'SLURM run ID' in the output: was the slurm executor used?"
    run_id = m.group(1)
    submitted = {}  # SLURM jobid -> (rule, slurm log)
    for jid, log in re.findall(
        r"has been submitted with SLURM jobid (\d+) \(log: (.+?)\)\.?$", out, re.M
    ):
        rm = re.search(r"/(?:rule|group)_([^/]+)/", log)
        assert rm, log
        submitted[jid] = (rm.group(1), Path(log))
    assert submitted, f"no job was submitted to SLURM:\n{out[-4000:]}"

    # every non-local job of the DAG was submitted exactly once
    expected = Counter(re.findall(r"^rule (\S+):$", out, re.M))
    got = Counter(rule for rule, _ in submitted.values())
    assert got == expected, f"submitted {dict(got)} but the DAG ran {dict(expected)}"

    # the controller's job-completion records (jobcomp/filetxt)
    jobcomp = slurm_cluster["jobcomp"]
    recs = {}
    for _ in range(20):  # written by slurmctld when each job ends
        recs = {}
        for line in jobcomp.read_text(errors="replace").splitlines():
            kv = _parse_kv(line)
            if kv.get("Name") == run_id:
                recs[kv["JobId"]] = kv
        if set(submitted) <= set(recs):
            break
        time.sleep(1)
    assert set(recs) == set(submitted), (
        f"jobcomp.log has {sorted(recs)} for run {run_id}, submitted {sorted(submitted)}"
    )
    for jid, kv in recs.items():
        assert kv["JobState"] == "COMPLETED", kv
        assert kv["ExitCode"] == "0:0", kv
        assert Path(kv["WorkDir"]).resolve() == slurm_dir.resolve(), kv

    # the controller's job comments name the same rules (MinJobAge keeps them)
    sq = subprocess.run(
        ["squeue", "--states=all", "--noheader", "--name", run_id, "--format=%i|%k|%T"],
        capture_output=True, text=True, check=True,
    ).stdout
    comments = {}
    for line in sq.splitlines():
        jid, comment, state = line.strip().split("|")
        comments[jid] = (comment, state)
    assert set(comments) == set(submitted), (comments, submitted)
    for jid, (rule, _) in submitted.items():
        comment, state = comments[jid]
        assert comment == f"rule_{rule}" or comment.startswith(f"rule_{rule}_wildcards_"), (
            jid, rule, comment,
        )
        assert state == "COMPLETED", (jid, state)

    # rules the profile sends to a GPU did request one
    set_res = _load_profile().get("set-resources") or {}
    gpu_rules = {r for r, res in set_res.items() if (res or {}).get("gpu")}
    for jid, (rule, _) in submitted.items():
        if rule in gpu_rules:
            show = subprocess.run(
                ["scontrol", "show", "job", jid], capture_output=True, text=True, check=True
            ).stdout
            assert re.search(r"TresPerJob=\S*gpu", show), f"job {jid} ({rule}) got no GPU:\n{show}"

    # ---- logs land under logs/ ------------------------------------------
    logs_dir = (slurm_dir / "logs").resolve()
    for jid, (rule, log) in submitted.items():
        assert log.resolve().is_relative_to(logs_dir), log
        assert log.exists(), f"SLURM log {log} of job {jid} ({rule}) missing"
    stray = [
        str(p.relative_to(slurm_dir))
        for p in slurm_dir.rglob("*.log")
        if not p.resolve().is_relative_to(logs_dir)
        and ".snakemake" not in p.relative_to(slurm_dir).parts
    ]
    assert not stray, f"log files outside logs/: {stray}"

    # ---- same results as the local run -----------------------------------
    n = _compare_outputs(slurm_dir, local_dir)
    assert n > 0, "no numeric artifact (npz/npy/csv/tsv/json) to compare"
    print(f"{len(submitted)} jobs of {len(got)} rules ran through SLURM (run {run_id}); "
          f"{n} numeric artifacts equal to the local run's")


def test_profile_names_existing_rules(pipeline, tmp_path):
    """snakemake silently ignores set-resources for an unknown rule (9.27): a
    renamed rule would quietly lose its GPU request. Needs no SLURM."""
    set_res = _load_profile().get("set-resources") or {}
    r = subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"),
         "--directory", str(tmp_path), "--configfile", str(ROOT / TEST_CONFIG), "--list-rules"],
        cwd=tmp_path, env=_clean_env(), capture_output=True, text=True, timeout=300,
    )
    assert r.returncode == 0, r.stderr[-4000:]
    rules = {line.split()[0] for line in r.stdout.splitlines() if line.strip()}
    unknown = sorted(set(set_res) - rules)
    assert not unknown, f"{PROFILE}/config.yaml set-resources names unknown rules {unknown}; rules: {sorted(rules)}"
