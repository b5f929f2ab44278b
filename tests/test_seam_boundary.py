"""Everything about processes and devices goes through ganforge/runtime/seam.py: no other module of
the package reads torchrun's variables, calls ``.cuda()`` or touches torch.distributed."""

from __future__ import annotations

import re
from pathlib import Path

import ganforge

PACKAGE = Path(ganforge.__file__).parent
SEAM = PACKAGE / "runtime" / "seam.py"
ENVIRONMENT = PACKAGE / "runtime" / "environment.py"  # checks the seam's variables before any work
FORBIDDEN = re.compile(r"""\.cuda\(|["'](RANK|LOCAL_RANK|WORLD_SIZE|LOCAL_WORLD_SIZE)["']|torch\.distributed|"""
                       r"""init_process_group|GradScaler\(""")


def test_only_the_seam_knows_about_processes_and_devices():
    offenders = [f"{path.relative_to(PACKAGE)}:{number}: {line.strip()}"
                 for path in sorted(PACKAGE.rglob("*.py")) if path not in (SEAM, ENVIRONMENT)
                 for number, line in enumerate(path.read_text().splitlines(), 1) if FORBIDDEN.search(line)]
    assert not offenders, "move these into ganforge/runtime/seam.py:\n" + "\n".join(offenders)


def test_the_pattern_catches_what_it_should():
    for line in ('rank = int(os.environ["RANK"])', "x = x.cuda()", "import torch.distributed as dist",
                 "s = torch.amp.GradScaler('cuda')"):
        assert FORBIDDEN.search(line), line
