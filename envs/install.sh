#!/usr/bin/env bash
# Install convexadv with everything the pipeline and the tests need into ./.venv.
# Idempotent; needs Python >= 3.11 with venv and pip. MOSEK is installed but optional:
# without a licence the solvers fall back to Clarabel / the fast solver.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
# torch / torchvision pinned to the builds this project is tested with
case "$(uname -m)" in
    aarch64|arm64) TORCH="torch==2.9.1 torchvision==0.24.1" ;;
    *) TORCH="torch==2.14.1 torchvision==0.29.1" ;;
esac
.venv/bin/python -m pip install --quiet $TORCH
.venv/bin/python -m pip install --quiet -e ".[pipeline,test,mosek,cluster]"
# AutoAttack (convexadv.attacks.autoattack): torchattacks 3.5.1 pins requests~=2.25.1, which it never imports;
# --no-deps keeps pip from downgrading requests / urllib3 for it (its real needs are installed above)
.venv/bin/python -m pip install --quiet --no-deps "torchattacks==3.5.1"
.venv/bin/python -c "import convexadv, torch, snakemake; print('convexadv', convexadv.__version__, '| torch', torch.__version__, '| snakemake', snakemake.__version__)"
