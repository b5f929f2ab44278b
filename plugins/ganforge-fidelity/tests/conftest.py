"""Let the tests import the plugin from this checkout when it is not pip-installed, and keep
ganforge's compiled op out: in .venv-fidelity (torch 2.14.1) a ganforge imported from the checkout
would find the ``_C`` built there for .venv's torch, which must not load into another torch."""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("GANFORGE_OP_REFERENCE", "1")  # before anything imports ganforge

PLUGIN_ROOT = Path(__file__).resolve().parents[1]
if str(PLUGIN_ROOT) not in sys.path:
    sys.path.append(str(PLUGIN_ROOT))  # an installed copy, if any, still comes first
