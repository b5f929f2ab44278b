import os
import sys

from ganforge.cli.main import EXIT_INTERRUPTED, main

code = main()
if code == EXIT_INTERRUPTED:
    # A stop signal that lands while a library runs Python code through the C API (torch's import
    # does) leaves CPython's "unhandled KeyboardInterrupt" flag set even though main() caught it,
    # and CPython then ends the process by SIGINT instead of this exit status. Everything of ours
    # is written (outputs whole or not at all, checkpoints fsynced); leave without finalisation.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
sys.exit(code)
