"""``ganforge sweep``: a grid of settings over seeds (:mod:`.grid`), its folder and plan
(:mod:`.plan`), one trial in its own process (:mod:`.trial`), several at once on shares of the cores
(:mod:`.runner`), the statistics (:mod:`.stats`) and the report files (:mod:`.report`)."""
