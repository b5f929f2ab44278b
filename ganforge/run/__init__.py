"""The run folder and everything written into it: layout, config.json, metrics.jsonl, checkpoints,
``latest``, rewinding, the resume record and the one-writer lock. No other module spells those
names; they ask :class:`ganforge.run.folder.RunFolder`."""
