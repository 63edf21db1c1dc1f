# Stage 2: activation patterns D_i, Algorithm 1 (eps = 0) or Algorithm 2 (eps > 0).


rule patterns:
    """Sample P distinct activation patterns of the training data (convexadv.patterns)."""
    input:
        train=lambda w: train_data(w.exp, w.seed),
    output:
        "results/{exp}/convex/eps{eps}/P{P}/seed{seed}/patterns.npz",
    params:
        n_patterns=lambda w: int(w.P),
        eps=lambda w: float(w.eps),
        n_perturbations=lambda w: config[w.exp]["n_perturbations"],
        bias=lambda w: config[w.exp]["bias"],
        seed=lambda w: int(w.seed),
    log:
        "logs/{exp}/convex/eps{eps}/P{P}/seed{seed}/patterns.log",
    benchmark:
        "results/benchmarks/{exp}/convex/eps{eps}/P{P}/seed{seed}/patterns.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        ENV
    script:
        "../scripts/patterns.py"
