"""Launch N local processes through torchrun (``domainclip run --nproc N``).

Kept free of torch imports: the CLI parent process only builds a command line
and waits, so it should not pay torch's import time.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence

from domainclip.errors import RecipeError

DEFAULT_MODULE = "domainclip.cli.main"


def torchrun_command(nproc: int, argv: Sequence[str], *, module: str = DEFAULT_MODULE) -> list[str]:
    """The command line that runs ``python -m <module> <argv>`` in ``nproc`` local processes.

    ``--standalone`` makes torchrun pick a free rendezvous port on localhost, so
    two runs on one machine never collide.
    """
    if nproc < 1:
        raise RecipeError(f"--nproc must be at least 1, got {nproc}")
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={nproc}",
        "-m",
        module,
        *argv,
    ]


def launch_local(
    nproc: int, argv: Sequence[str], *, module: str = DEFAULT_MODULE, env: Mapping[str, str] | None = None
) -> int:
    """Run ``python -m <module> <argv>`` under torchrun with ``nproc`` processes; return its exit code.

    ``argv`` must not contain ``--nproc`` again (the children would launch
    again); calling this from inside a torchrun worker is refused for that reason.
    """
    if "LOCAL_RANK" in os.environ or "TORCHELASTIC_RUN_ID" in os.environ:
        raise RecipeError(
            "--nproc was given inside a process already started by torchrun; "
            "drop --nproc from the command that torchrun runs"
        )
    command = torchrun_command(nproc, argv, module=module)
    return subprocess.call(command, env=None if env is None else dict(env))
