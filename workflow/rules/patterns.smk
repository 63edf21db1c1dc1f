# Stage 2: activation patterns D_i, Algorithm 1 (eps = 0) or Algorithm 2 (eps > 0) with the paper's
# sampler (kind "convex") or the robust-feasible one ("convex-robust"); "linear": the all-active pattern.


rule patterns:
    """Sample P distinct activation patterns of the training data (convexadv.patterns) and count usable ones."""
    input:
        train=lambda w: train_data(w.exp, w.seed),
    output:
        "results/{exp}/{kind}/eps{eps}/P{P}/seed{seed}/patterns.npz",
    params:
        sampler=lambda w: {"convex": "paper", "convex-robust": "robust", "linear": "all-active"}[w.kind],
        n_patterns=lambda w: int(w.P),
        eps=lambda w: float(w.eps),
        n_perturbations=lambda w: config[w.exp]["n_perturbations"],
        bias=lambda w: config[w.exp]["bias"],
        seed=lambda w: int(w.seed),
    log:
        "logs/{exp}/{kind}/eps{eps}/P{P}/seed{seed}/patterns.log",
    benchmark:
        "results/benchmarks/{exp}/{kind}/eps{eps}/P{P}/seed{seed}/patterns.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        ENV
    script:
        "../scripts/patterns.py"
