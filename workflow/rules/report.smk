# Stage 7: Table I, Figures 1-3, the squared-loss results and the solver certificates.
# Every output marked report() is in `snakemake --report results/report.html`.


rule table:
    """Table I (CIFAR-10), the digits and custom tables, or the squared-loss table: mean (std) over the seeds
    of clean / FGSM / PGD / AutoAttack / exact robust accuracy (MSE for regression) and the training objective."""
    input:
        evals=lambda w: eval_files(table_experiment(w.table)),
        robustness=lambda w: robustness_files(table_experiment(w.table)),
    output:
        csv=report("results/tables/{table}.csv", caption="../report/table.rst", category="Tables"),
        md="results/tables/{table}.md",
        png=report("results/figures/{table}.png", caption="../report/table_fig.rst", category="Tables"),
    wildcard_constraints:
        table="table1|digits|custom|squared_loss",
    params:
        models=lambda w: models(table_experiment(w.table)),
        seeds=lambda w: seeds(table_experiment(w.table)),
        eps=lambda w: fmt(exp_config(table_experiment(w.table))["eps"]),
        kind=lambda w: "regression" if w.table == "squared_loss" else "classification",
        paper_table=lambda w: w.table == "table1",
    log:
        "logs/report/{table}.log",
    benchmark:
        "results/benchmarks/report/{table}.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    conda:
        ENV
    script:
        "../scripts/table.py"


rule robustness_curve_figure:
    """Exact robust accuracy against eps (0 to twice the training eps) for every method of a table."""
    input:
        curves=lambda w: curve_files(table_experiment(w.table)),
    output:
        report("results/figures/{table}_robustness_curve.png", caption="../report/robustness_curve.rst",
               category="Tables"),
    wildcard_constraints:
        table="table1|digits|custom",
    params:
        models=lambda w: models(table_experiment(w.table)),
        eps=lambda w: exp_config(table_experiment(w.table))["eps"],
    log:
        "logs/report/{table}_robustness_curve.log",
    benchmark:
        "results/benchmarks/report/{table}_robustness_curve.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    conda:
        ENV
    script:
        "../scripts/robustness_curve_plot.py"


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
