# Stages 3-4: the convex programs (8) / (15) / (18) with their certificates, and recovery (7).


rule solve_convex:
    """Solve Algorithm 1's (8) or Algorithm 2's (15) / (18); save the solution and its certificate
    (status "degenerate", with the reason, when the optimum is the zero network)."""
    input:
        train=lambda w: train_data(w.exp, w.seed),
        patterns="results/{exp}/{kind}/eps{eps}/P{P}/seed{seed}/patterns.npz",
    output:
        solution="results/{exp}/{kind}/eps{eps}/P{P}/seed{seed}/solution.npz",
        certificate="results/{exp}/{kind}/eps{eps}/P{P}/seed{seed}/certificate.json",
    params:
        loss=lambda w: config[w.exp]["loss"],
        eps=lambda w: float(w.eps),
        beta=lambda w: config[w.exp]["beta"],
        bias=lambda w: config[w.exp]["bias"],
        solver=lambda w: solver(w.exp, w.eps),
        solver_options=lambda w: solver_options(w.exp, w.eps),
    log:
        "logs/{exp}/{kind}/eps{eps}/P{P}/seed{seed}/solve.log",
    benchmark:
        "results/benchmarks/{exp}/{kind}/eps{eps}/P{P}/seed{seed}/solve.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        ENV
    script:
        "../scripts/solve.py"


rule recover:
    """Recover the ReLU network (u_j, alpha_j) from (v_i, w_i) by (7)."""
    input:
        solution="results/{exp}/{kind}/eps{eps}/P{P}/seed{seed}/solution.npz",
        certificate="results/{exp}/{kind}/eps{eps}/P{P}/seed{seed}/certificate.json",
    output:
        "results/{exp}/{kind}/eps{eps}/P{P}/seed{seed}/network.npz",
    params:
        tol=1e-8,
    log:
        "logs/{exp}/{kind}/eps{eps}/P{P}/seed{seed}/recover.log",
    benchmark:
        "results/benchmarks/{exp}/{kind}/eps{eps}/P{P}/seed{seed}/recover.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    conda:
        ENV
    script:
        "../scripts/recover.py"


rule fig1_sweep:
    """Section VII-A: Algorithm 1 on the n = 40 set, `repeats` pattern draws for one P_s."""
    input:
        train="results/fig1/data/train_seed{seed}.npz",
    output:
        "results/fig1/seed{seed}/P{P}.npz",
    params:
        n_patterns=lambda w: int(w.P),
        repeats=config["fig1"]["repeats"],
        loss=config["fig1"]["loss"],
        beta=config["fig1"]["beta"],
        bias=config["fig1"]["bias"],
        seed=lambda w: int(w.seed),
        solver=solver("fig1"),
        solver_options=solver_options("fig1"),
    log:
        "logs/fig1/seed{seed}/P{P}.log",
    benchmark:
        "results/benchmarks/fig1/seed{seed}/P{P}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        ENV
    script:
        "../scripts/fig1_sweep.py"
