# Stage 6: clean / FGSM / PGD performance on the test split and the training objective.


rule evaluate:
    """Attack a trained network (FGSM, PGD with gamma = eps/30) and evaluate its training objective."""
    input:
        network="results/{exp}/{model}/seed{seed}/network.npz",
        train=lambda w: train_data(w.exp, w.seed),
        test=lambda w: test_data(w.exp, w.seed),
        certificate=lambda w: (
            [f"results/{w.exp}/{w.model}/seed{w.seed}/certificate.json"]
            if w.model.startswith("convex/")
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
