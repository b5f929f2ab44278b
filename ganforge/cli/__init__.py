"""The ``ganforge`` command line: run, list, sample, eval, doctor. Rich output lives here only."""
