"""Let the tests import the plugin from this checkout when it is not pip-installed."""

from __future__ import annotations

import sys
from pathlib import Path

PLUGIN_ROOT = Path(__file__).resolve().parents[1]
if str(PLUGIN_ROOT) not in sys.path:
    sys.path.append(str(PLUGIN_ROOT))  # an installed copy, if any, still comes first
