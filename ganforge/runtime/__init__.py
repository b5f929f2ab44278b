"""Where a run executes: device and precision (the seam), processes under torchrun, CPU threads,
RNG state and stop requests (Ctrl-C, SIGTERM). Nothing here knows about GANs."""
