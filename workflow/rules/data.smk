# Stage 1: data sets (convexadv.data).


rule cifar_train:
    """Balanced random CIFAR-10 training subset for one seed (7x7x3 features, 0-255)."""
    output:
        "results/cifar/data/train_seed{seed}.npz",
    params:
        split="train",
        source=config["cifar"]["source"],
        root=repo_path(config["cifar"]["root"]),
        classes=config["cifar"]["classes"],
        n_samples=config["cifar"]["n_train"],
        image_size=config["cifar"]["image_size"],
        seed=lambda w: int(w.seed),
    log:
        "logs/cifar/data/train_seed{seed}.log",
    benchmark:
        "results/benchmarks/cifar/data/train_seed{seed}.tsv"
    priority: DATA_PRIORITY
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        ENV
    script:
        "../scripts/data_cifar.py"


rule cifar_test:
    """The class pair's test split (all 2000 images unless cifar.n_test is set)."""
    output:
        "results/cifar/data/test.npz",
    params:
        split="test",
        source=config["cifar"]["source"],
        root=repo_path(config["cifar"]["root"]),
        classes=config["cifar"]["classes"],
        n_samples=config["cifar"]["n_test"],
        image_size=config["cifar"]["image_size"],
        seed=0,
    log:
        "logs/cifar/data/test.log",
    benchmark:
        "results/benchmarks/cifar/data/test.tsv"
    priority: DATA_PRIORITY
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        ENV
    script:
        "../scripts/data_cifar.py"


rule pair_train:
    """The training split of the digits pair or of the custom data set for one seed."""
    output:
        "results/{exp}/data/train_seed{seed}.npz",
    wildcard_constraints:
        exp="digits|custom",
    params:
        loader=lambda w: pair_loader(w.exp),
        split="train",
        n_samples=lambda w: config[w.exp].get("n_train"),
        seed=lambda w: int(w.seed),
    log:
        "logs/{exp}/data/train_seed{seed}.log",
    benchmark:
        "results/benchmarks/{exp}/data/train_seed{seed}.tsv"
    priority: DATA_PRIORITY
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        ENV
    script:
        "../scripts/data_pair.py"


rule pair_test:
    """The test split of the digits pair or of the custom data set."""
    output:
        "results/{exp}/data/test.npz",
    wildcard_constraints:
        exp="digits|custom",
    params:
        loader=lambda w: pair_loader(w.exp),
        split="test",
        n_samples=None,
        seed=0,
    log:
        "logs/{exp}/data/test.log",
    benchmark:
        "results/benchmarks/{exp}/data/test.tsv"
    priority: DATA_PRIORITY
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        ENV
    script:
        "../scripts/data_pair.py"


rule regression_data:
    """Standardised diabetes regression data, split with one seed."""
    output:
        train="results/regression/data/train_seed{seed}.npz",
        test="results/regression/data/test_seed{seed}.npz",
    params:
        dataset=config["regression"]["dataset"],
        test_fraction=config["regression"]["test_fraction"],
        seed=lambda w: int(w.seed),
    log:
        "logs/regression/data/seed{seed}.log",
    benchmark:
        "results/benchmarks/regression/data/seed{seed}.tsv"
    priority: DATA_PRIORITY
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    conda:
        ENV
    script:
        "../scripts/data_regression.py"


rule random_2d:
    """Random 2-D points with balanced random labels (sections VII-A, VII-B)."""
    output:
        "results/{exp}/data/train_seed{seed}.npz",
    wildcard_constraints:
        exp="fig1|fig2",
    params:
        n=lambda w: config[w.exp]["n"],
        min_separation=lambda w: config[w.exp]["min_separation"],
        seed=lambda w: int(w.seed),
    log:
        "logs/{exp}/data/train_seed{seed}.log",
    benchmark:
        "results/benchmarks/{exp}/data/train_seed{seed}.tsv"
    priority: DATA_PRIORITY
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    conda:
        ENV
    script:
        "../scripts/data_random2d.py"
