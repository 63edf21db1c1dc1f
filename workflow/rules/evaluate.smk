# Stage 6: clean / FGSM / PGD performance and the training objective; AutoAttack and exact robust accuracy (MILP).


rule evaluate:
    """Attack a trained network (FGSM, PGD with gamma = eps/30) and evaluate its training objective."""
    input:
        network="results/{exp}/{model}/seed{seed}/network.npz",
        train=lambda w: train_data(w.exp, w.seed),
        test=lambda w: test_data(w.exp, w.seed),
        certificate=lambda w: (
            [f"results/{w.exp}/{w.model}/seed{w.seed}/certificate.json"]
            if not w.model.startswith("gd-")
            else []
        ),
    output:
        "results/{exp}/{model}/seed{seed}/eval_eps{aeps}.json",
    params:
        loss=lambda w: config[w.exp]["loss"],
        attack_eps=lambda w: float(w.aeps),
        train_eps=lambda w: parse_model(w.model)[1],
        beta=lambda w: config[w.exp]["beta"],
        n_steps=lambda w: config[w.exp]["attack"]["n_steps"],
        step_size=lambda w: config[w.exp]["attack"]["step_size"],
    log:
        "logs/{exp}/{model}/seed{seed}/eval_eps{aeps}.log",
    benchmark:
        "results/benchmarks/{exp}/{model}/seed{seed}/eval_eps{aeps}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=15,
    conda:
        ENV
    script:
        "../scripts/evaluate.py"


rule robustness:
    """AutoAttack accuracy and exact robust accuracy (MILP, convexadv.verify) on the test split."""
    input:
        network="results/{exp}/{model}/seed{seed}/network.npz",
        test=lambda w: test_data(w.exp, w.seed),
    output:
        "results/{exp}/{model}/seed{seed}/robustness_eps{aeps}.json",
    params:
        eps=lambda w: float(w.aeps),
        autoattack=lambda w: config[w.exp]["evaluation"]["autoattack"],
        autoattack_queries=lambda w: config[w.exp]["evaluation"]["autoattack_queries"],
        image_shape=lambda w: image_shape(w.exp),
        exact=lambda w: config[w.exp]["evaluation"]["exact"],
        exact_points=lambda w: config[w.exp]["evaluation"]["exact_points"],
        time_limit=lambda w: config[w.exp]["evaluation"]["exact_time_limit"],
        lp_limit=lambda w: config[w.exp]["evaluation"].get("exact_lp_limit"),
        seed=lambda w: int(w.seed),
    log:
        "logs/{exp}/{model}/seed{seed}/robustness_eps{aeps}.log",
    benchmark:
        "results/benchmarks/{exp}/{model}/seed{seed}/robustness_eps{aeps}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=60,
    conda:
        ENV
    script:
        "../scripts/robustness.py"


rule robustness_curve:
    """Exact robust accuracy at eps = 0 ... 2 x the training eps on a fixed random subset of the test split."""
    input:
        network="results/{exp}/{model}/seed{seed}/network.npz",
        test=lambda w: test_data(w.exp, w.seed),
    output:
        "results/{exp}/{model}/seed{seed}/robustness_curve.json",
    params:
        eps_values=lambda w: [f * config[w.exp]["eps"] for f in config[w.exp]["evaluation"]["curve_eps"]],
        points=lambda w: config[w.exp]["evaluation"]["curve_points"],
        time_limit=lambda w: config[w.exp]["evaluation"]["exact_time_limit"],
        lp_limit=lambda w: config[w.exp]["evaluation"].get("exact_lp_limit"),
    log:
        "logs/{exp}/{model}/seed{seed}/robustness_curve.log",
    benchmark:
        "results/benchmarks/{exp}/{model}/seed{seed}/robustness_curve.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=60,
    conda:
        ENV
    script:
        "../scripts/robustness_curve.py"
