# Solver benchmark (issue: fast solver vs cvxpy + Clarabel / SCS / MOSEK and GD-PGD); not part of `all`:
#   snakemake --cores 2 solver_benchmark


rule solver_benchmark_data:
    """The whole two-class CIFAR-10 training split (10,000 images) area-downsampled to {px} x {px} x 3."""
    output:
        "results/benchmark/data/cifar_train_{px}px.npz",
    params:
        split="train",
        source=config["cifar"]["source"],
        root=repo_path(config["cifar"]["root"]),
        classes=config["cifar"]["classes"],
        n_samples=None,
        image_size=lambda w: int(w.px),
        seed=0,
    log:
        "logs/benchmark/data/cifar_train_{px}px.log",
    benchmark:
        "results/benchmarks/benchmark/data/cifar_train_{px}px.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        ENV
    script:
        "../scripts/data_cifar.py"


rule solver_benchmark:
    """benchmarks/bench_solvers.py on the same instances and patterns for every solver: table, CSV, plot."""
    input:
        data=expand(
            "results/benchmark/data/cifar_train_{px}px.npz",
            px=BENCHMARK_IMAGE_SIZES[benchmark_setting("sizes", "paper")],
        ),
    output:
        csv="results/benchmark/bench_solvers.csv",
        md="results/benchmark/bench_solvers.md",
        png=report("results/benchmark/bench_solvers.png", caption="../report/benchmark.rst", category="Solvers"),
    params:
        sizes=benchmark_setting("sizes", "paper"),
        solvers=",".join(benchmark_setting("solvers", ["fast", "clarabel"])),
        tol=benchmark_setting("tol", 1e-4),
        device=benchmark_setting("device", "cpu"),
        script=repo_path("benchmarks/bench_solvers.py"),
    log:
        "logs/benchmark/bench_solvers.log",
    benchmark:
        "results/benchmarks/benchmark/bench_solvers.tsv"
    threads: 2
    resources:
        mem_mb=16000,
        runtime=240,
    conda:
        ENV
    script:
        "../scripts/solver_benchmark.py"


rule solver_benchmark_patterns:
    """Solve time against the number of surviving patterns (robust sampler, n = 600, d = 147): fast vs
    Clarabel after the presolve vs GD-PGD; benchmarks/bench_solvers.py --patterns."""
    input:
        data="results/benchmark/data/cifar_train_7px.npz",
    output:
        csv="results/benchmark/bench_patterns.csv",
        png=report("results/benchmark/bench_patterns.png", caption="../report/benchmark_patterns.rst",
                   category="Solvers"),
    params:
        patterns=",".join(str(p) for p in benchmark_setting("pattern_sweep", [2, 4, 8, 16, 24, 36])),
        peer_limit=benchmark_setting("peer_limit", 600),
        solvers=",".join(s for s in benchmark_setting("solvers", ["fast", "clarabel"]) if s != "clarabel-plain"),
        tol=benchmark_setting("tol", 1e-4),
        device=benchmark_setting("device", "cpu"),
        script=repo_path("benchmarks/bench_solvers.py"),
    log:
        "logs/benchmark/bench_patterns.log",
    benchmark:
        "results/benchmarks/benchmark/bench_patterns.tsv"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=240,
    conda:
        ENV
    script:
        "../scripts/solver_benchmark.py"
