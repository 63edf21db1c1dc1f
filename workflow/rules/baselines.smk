# Stage 5: back-propagation baselines GD-STD, GD-FGSM, GD-PGD (convexadv.baselines.train_gd).


rule baseline:
    """Train a width-m one-hidden-layer ReLU network by mini-batch Adam (std / FGSM / PGD training)."""
    input:
        train=lambda w: train_data(w.exp, w.seed),
    output:
        "results/{exp}/gd-{method}/eps{eps}/m{width}/seed{seed}/network.npz",
    params:
        method=lambda w: w.method,
        loss=lambda w: config[w.exp]["loss"],
        eps=lambda w: float(w.eps),
        width=lambda w: int(w.width),
        beta=lambda w: config[w.exp]["beta"],
        bias=lambda w: config[w.exp]["bias"],
        epochs=lambda w: config[w.exp]["gd"]["epochs"],
        batch_size=lambda w: config[w.exp]["gd"]["batch_size"],
        lr=lambda w: config[w.exp]["gd"]["lr"],
        pgd_steps=lambda w: config[w.exp]["gd"]["pgd_steps"],
        pgd_step_size=lambda w: config[w.exp]["gd"]["pgd_step_size"],
        seed=lambda w: int(w.seed),
    log:
        "logs/{exp}/gd-{method}/eps{eps}/m{width}/seed{seed}/train.log",
    benchmark:
        "results/benchmarks/{exp}/gd-{method}/eps{eps}/m{width}/seed{seed}/train.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    conda:
        ENV
    script:
        "../scripts/baseline.py"
