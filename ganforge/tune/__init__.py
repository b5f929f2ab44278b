"""``ganforge tune``: the search space (:mod:`.space`), one Optuna trial (:mod:`.objective`), the
study and its storage (:mod:`.study`) and the best trial as a TOML config (:mod:`.best`). Optuna
is imported only when a search runs: it is the optional extra ``ganforge[tune]``."""
