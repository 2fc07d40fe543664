"""The search's progress line: a Ray Tune callback (apart, so that importing flows.search does not import Ray)."""

from __future__ import annotations

from ray.tune import Callback

#: Progress functions of running searches, by id: Tune pickles its callbacks with the experiment's
#: state, which a terminal's progress bar (locks) cannot be; the callback keeps only the id.
PROGRESS: dict[int, object] = {}


class Reporter(Callback):
    """Calls PROGRESS[key](text) in the driver as each trial ends."""

    def __init__(self, key: int):
        self.key = key

    def _say(self, text: str) -> None:
        fn = PROGRESS.get(self.key)
        if fn is not None:
            fn(text)

    def on_trial_complete(self, iteration, trials, trial, **info):
        m = trial.last_result or {}
        acc = m.get("accuracy")
        self._say("cached" if m.get("cached") else f"accuracy {100 * acc:.1f}%" if acc is not None else "done")

    def on_trial_error(self, iteration, trials, trial, **info):
        self._say("failed")
