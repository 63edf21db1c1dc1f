# Stage 7: Table I, Figures 1-3, the squared-loss results and the solver certificates.
# Every output marked report() is in `snakemake --report results/report.html`.


rule table1:
    """Table I: mean (std) over the seeds of clean / FGSM / PGD accuracy and the training objective."""
    input:
        evals=eval_files("cifar"),
    output:
        csv=report("results/tables/table1.csv", caption="../report/table1.rst", category="Table I (CIFAR-10)"),
        md="results/tables/table1.md",
        png=report("results/figures/table1.png", caption="../report/table1_fig.rst", category="Table I (CIFAR-10)"),
    params:
        models=models("cifar"),
        seeds=seeds("cifar"),
        eps=fmt(config["cifar"]["eps"]),
        kind="classification",
    log:
        "logs/report/table1.log",
    benchmark:
        "results/benchmarks/report/table1.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    conda:
        ENV
    script:
        "../scripts/table.py"


rule squared_loss:
    """Squared loss: Algorithm 1 vs Algorithm 2 vs GD on the regression data (clean / FGSM / PGD MSE)."""
    input:
        evals=eval_files("regression"),
    output:
        csv=report("results/tables/squared_loss.csv", caption="../report/squared_loss.rst", category="Squared loss"),
        md="results/tables/squared_loss.md",
        png=report("results/figures/squared_loss.png", caption="../report/squared_loss_fig.rst", category="Squared loss"),
    params:
        models=models("regression"),
        seeds=seeds("regression"),
        eps=fmt(config["regression"]["eps"]),
        kind="regression",
    log:
        "logs/report/squared_loss.log",
    benchmark:
        "results/benchmarks/report/squared_loss.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    conda:
        ENV
    script:
        "../scripts/table.py"


rule certificates:
    """Every convex solve's certificate: objective, lower bound, gap, max violation, solver, time."""
    input:
        certificates=[
            path.replace("solution.npz", "certificate.json")
            for exp in CONVEX_EXPERIMENTS
            for path in solution_files(exp)
        ],
    output:
        report("results/tables/certificates.csv", caption="../report/certificates.rst", category="Solver certificates"),
    log:
        "logs/report/certificates.log",
    benchmark:
        "results/benchmarks/report/certificates.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    conda:
        ENV
    script:
        "../scripts/certificates.py"


rule fig1:
    """Figure 1: the n = 40 data set with Algorithm 1's decision region, and loss versus P_s."""
    input:
        train=f"results/fig1/data/train_seed{config['fig1']['seed']}.npz",
        sweeps=fig1_files(),
    output:
        png=report("results/figures/fig1.png", caption="../report/fig1.rst", category="Figures"),
        csv=report("results/tables/fig1.csv", caption="../report/fig1_table.rst", category="Figures"),
    params:
        n_patterns=config["fig1"]["n_patterns"],
    log:
        "logs/report/fig1.log",
    benchmark:
        "results/benchmarks/report/fig1.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    conda:
        ENV
    script:
        "../scripts/fig1_plot.py"


FIG2_SEED = config["fig2"]["seeds"][0]


rule fig2:
    """Figure 2: decision regions, eps-boxes and Theorem 4's worst-case vertices, Alg. 1 beside Alg. 2."""
    input:
        train=train_data("fig2", FIG2_SEED),
        alg1=f"results/fig2/{convex_model('fig2', 0)}/seed{FIG2_SEED}/network.npz",
        alg2=f"results/fig2/{convex_model('fig2', config['fig2']['eps'])}/seed{FIG2_SEED}/network.npz",
    output:
        report("results/figures/fig2.png", caption="../report/fig2.rst", category="Figures"),
    params:
        eps=config["fig2"]["eps"],
        loss=config["fig2"]["loss"],
    log:
        "logs/report/fig2.log",
    benchmark:
        "results/benchmarks/report/fig2.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    conda:
        ENV
    script:
        "../scripts/fig2_plot.py"


rule fig3:
    """Figure 3: l_convex - l_nonconvex over the eps-ball around one training point (Alg. 2 model)."""
    input:
        train=train_data("fig2", FIG2_SEED),
        solution=f"results/fig2/{convex_model('fig2', config['fig2']['eps'])}/seed{FIG2_SEED}/solution.npz",
        network=f"results/fig2/{convex_model('fig2', config['fig2']['eps'])}/seed{FIG2_SEED}/network.npz",
    output:
        report("results/figures/fig3.png", caption="../report/fig3.rst", category="Figures"),
    params:
        seed=config["fig3"]["seed"],
        radius=config["fig3"]["radius"],
        zoom=config["fig3"]["zoom"],
        grid=config["fig3"]["grid"],
        eps=config["fig2"]["eps"],
    log:
        "logs/report/fig3.log",
    benchmark:
        "results/benchmarks/report/fig3.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    conda:
        ENV
    script:
        "../scripts/fig3_plot.py"
