#!/usr/bin/env bash
# Builds .venv-fidelity: a second virtual environment for plugins/ganforge-fidelity, whose
# torch-fidelity imports torchvision at import time. PyPI's torchvision wheels cannot load beside
# the main .venv's CPU build of torch ("operator torchvision::nms does not exist"), so this one
# holds a matching pair, torch 2.14.1 with torchvision 0.29.1, and ganforge installed from this
# checkout without its C++ extension (GANFORGE_NO_EXT=1: the op falls back to pure PyTorch; the
# _C built in the tree for .venv's torch must never load into another torch, hence no editable
# install). Run again to reinstall ganforge and the plugin after changing them; the pinned
# packages already there are kept.
#
#   tools/fidelity_venv.sh            # or: VENV=path PYTHON=python3.11 tools/fidelity_venv.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv-fidelity}
PIP="$VENV/bin/pip -qq"  # errors only: this machine's pip config warns about every local index

if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
# Every pip call below is held to these pins, so no step can resolve another torch.
cat > "$VENV/constraints.txt" <<'EOF'
torch==2.14.1
torchvision==0.29.1
torch-fidelity==0.4.0
EOF
C="-c $VENV/constraints.txt"
$PIP install $C torch==2.14.1 torchvision==0.29.1
$PIP install $C --no-deps torch-fidelity==0.4.0  # its own requirements are the lines around it
$PIP install $C tqdm scipy pillow setuptools wheel pytest scikit-learn
# ganforge's dependencies the first time, then ganforge and the plugin afresh each time.
GANFORGE_NO_EXT=1 $PIP install $C --no-build-isolation .
GANFORGE_NO_EXT=1 $PIP install $C --no-build-isolation --no-deps --force-reinstall . ./plugins/ganforge-fidelity
# -I: not the checkout's ganforge (cwd), whose _C was built for .venv's torch
"$VENV/bin/python" -I - <<'EOF'
import importlib.metadata as md
import importlib.util
import torch
import torchvision
import torch_fidelity
assert (torch.__version__.split("+")[0], torchvision.__version__.split("+")[0], torch_fidelity.__version__) == \
    ("2.14.1", "0.29.1", "0.4.0"), (torch.__version__, torchvision.__version__, torch_fidelity.__version__)
assert importlib.util.find_spec("ganforge._C") is None, "ganforge._C was installed; it must not be here"
assert any(ep.value == "ganforge_fidelity" for ep in md.entry_points(group="ganforge"))
print(f"{__import__('sys').prefix}: torch {torch.__version__}, torchvision {torchvision.__version__}, "
      f"torch-fidelity {torch_fidelity.__version__}, ganforge and ganforge-fidelity installed")
EOF
touch "$VENV/.fidelity-installed"
