"""Parameter importances of a stored study, for MPJPE (optuna's default evaluator)."""
from __future__ import annotations

import warnings

from hand_nas.search.storage.studies import load_study, trial_record


def param_importances(name: str, url: str) -> tuple[dict, str]:
    """({parameter: importance}, a note saying over what) for MPJPE over the trained trials; ({}, why) if none."""
    import optuna

    study = load_study(name, url)
    done = [t for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
            if trial_record(t).trained]
    if len(done) < 4:
        return {}, f"{len(done)} completed feasible trials: importances need at least 4"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sub = optuna.create_study(directions=["minimize"])
            for t in done:
                sub.add_trial(optuna.trial.create_trial(params=t.params, distributions=t.distributions,
                                                        values=[t.values[0]]))
            imp = optuna.importance.get_param_importances(sub)
        return {k: float(v) for k, v in imp.items()}, (f"optuna's default importance evaluator over {len(done)} "
                                                       "completed feasible trials (target: MPJPE)")
    except Exception as exc:  # optuna raises several types for degenerate studies
        return {}, f"importances unavailable: {exc}"
