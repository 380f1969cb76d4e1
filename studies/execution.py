"""Running a study's trials on Ray Tune, locally or on a cluster, and what became of each trial.

Each trial is one run of a runner module (``runners.ppo`` or ``runners.bc``), named by its import path in
the trial's config: the trial imports it by that name and calls its ``main(argv, reporter=tune.report)``,
the function its command line calls, with the run directory ``<study>/trials/<trial>/``. The runner's output
goes to ``stdout.log`` there. ``run_trials`` runs a grid (or an Optuna search), or resumes an interrupted one
with Ray Tune's experiment restore: finished trials are not rerun, unfinished PPO trials continue from their
last checkpoint, unfinished BC trials restart.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from agents.atomic import write_json
from agents.command_line import UsageError
from agents.reporting import RUN_COMPLETE
from studies.plan import TrialSpec, sampled_spec

# What a study ships to a remote cluster as the trials' working directory: the code, not the runs.
SHIPPED_EXCLUDES = ["runs/", ".venv/", ".git/", "*.zip", "*.npz", "__pycache__/", "*.egg-info/"]
# Keys of a trial's config that are not sampled settings.
SEARCH_CONFIG_KEYS = ("spec", "study_dir", "threads", "search", "runner")
# A trial's (spec, status, one-line error); status is finished, failed, unfinished or pending.
Outcome = tuple[TrialSpec, str, str]


@dataclass(frozen=True)
class Search:
    """An Optuna search instead of a grid: Ray Tune samples ``space`` ``num_samples`` times, optimising the
    reported ``metric`` (``mode`` ``max`` or ``min``)."""

    space: dict[str, Any]
    metric: str
    mode: str
    num_samples: int


class TrialFailed(RuntimeError):
    """A trial that ended without a model: the message is the runner's one-line error."""


def runner_module(name: str) -> ModuleType:
    """The runner module a trial calls, by import path (``runners.ppo``): it has ``build_parser()`` and
    ``main(argv, reporter=...)``."""
    return importlib.import_module(name)


def last_error_line(text: str) -> str:
    """The last ``error: ...`` line a runner printed (or the last line of a traceback)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    line = (errors or lines or ["failed without a message"])[-1]
    # Ray names the exception by its module (studies.execution.TrialFailed: ...): the message is the rest.
    for prefix in (
        "error: ",
        f"{TrialFailed.__module__}.{TrialFailed.__name__}: ",
        f"{TrialFailed.__name__}: ",
    ):
        line = line.removeprefix(prefix)
    return line


def run_trial(config: dict[str, Any]) -> None:
    """The Ray Tune trainable: one run of the runner ``config["runner"]``, reporting to Ray Tune.

    A PPO trial whose run directory already holds a checkpoint (an interrupted study being resumed)
    continues from it with ``--resume``; a BC trial starts again. The runner's output goes to
    ``stdout.log`` in the run directory, not to the study's console.
    """
    from ray import tune

    spec = TrialSpec(**config["spec"])
    run_dir = Path(config["study_dir"]) / "trials" / spec.name
    run_dir.mkdir(parents=True, exist_ok=True)
    if spec.algo == "ppo" and (run_dir / "config.json").is_file() and any(run_dir.glob("checkpoints/*.zip")):
        argv = ["--resume", str(run_dir)]
    else:
        argv = [*spec.argv, "--logdir", str(run_dir), "--overwrite", "--no-progress"]
        argv += ["--threads", str(config["threads"])]
    write_json(run_dir / "trial.json", {**asdict(spec), "label": spec.label})
    module = runner_module(config["runner"])
    with (
        open(run_dir / "stdout.log", "a") as log,
        contextlib.redirect_stdout(log),
        contextlib.redirect_stderr(log),
    ):
        print(f"$ python -m {config['runner']} {' '.join(argv)}", flush=True)
        try:
            code = module.main(argv, reporter=tune.report)
        except (UsageError, ValueError) as error:
            print(f"error: {str(error).splitlines()[0]}", flush=True)
            code = 2
    if code != 0:
        raise TrialFailed(last_error_line((run_dir / "stdout.log").read_text()))


def search_spec(config: dict[str, Any], trial_id: str) -> TrialSpec:
    """The trial a search sampled, from its config: the base trial with the sampled settings added to its
    arguments and variant, named after Ray's trial id."""
    sampled = {key: value for key, value in config.items() if key not in SEARCH_CONFIG_KEYS}
    parser = runner_module(config["runner"]).build_parser()
    return sampled_spec(TrialSpec(**config["spec"]), sampled, trial_id, parser)


def search_trial(config: dict[str, Any]) -> None:
    """A trial of an Optuna search: the base trial with the sampled settings."""
    from ray import tune

    spec = search_spec(config, tune.get_context().get_trial_id())
    run_trial({**config, "spec": asdict(spec)})


def trial_outcomes(results: Iterable[Any], specs: list[TrialSpec]) -> dict[str, Outcome]:
    """Each trial's (spec, status, one-line error) from Ray's results: ``failed``, ``finished`` (it reported
    ``RUN_COMPLETE``) or ``unfinished`` (interrupted while running); ``specs`` (a grid's trials) that have
    no result yet are ``pending``.

    A trial that Ray had queued but not started when the study was interrupted has a result without a
    config (it never reported): it is pending too, not an error.
    """
    outcomes: dict[str, Outcome] = {}
    for result in results:
        if result.config is None:
            continue
        spec = TrialSpec(**result.config["spec"])
        if "search" in result.config:
            trial_id = (result.metrics or {}).get("trial_id") or Path(result.path).name.rsplit("-", 1)[-1]
            spec = search_spec(result.config, trial_id)
        if result.error:
            outcomes[spec.name] = (spec, "failed", last_error_line(str(result.error)))
        elif (result.metrics or {}).get(RUN_COMPLETE):
            outcomes[spec.name] = (spec, "finished", "")
        else:
            outcomes[spec.name] = (spec, "unfinished", "")
    for spec in specs:
        outcomes.setdefault(spec.name, (spec, "pending", ""))
    return outcomes


def quiet_ray() -> None:
    """Keep Ray's and Optuna's logs (and trial tracebacks) off the console: the study summarises failures."""
    for name in ("ray", "ray.tune", "ray.train", "ray.data", "optuna"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)


def ray_init_kwargs(address: str | None, cpus_per_trial: int) -> dict[str, Any]:
    """``ray.init`` arguments: a local Ray with every core by default; with ``address`` (``auto``,
    ``ray://HOST:PORT``) an existing cluster, to which the project's code is shipped as the trials' working
    directory (the nodes need the same Python packages installed, and the study directory must be on a
    filesystem every node sees, e.g. NFS). Trials import the project's packages either way; the dashboard
    and the driver's copy of worker logs stay off."""
    project_root = str(Path(__file__).resolve().parents[1])
    env_vars = {"OMP_NUM_THREADS": str(cpus_per_trial)}
    kwargs: dict[str, Any] = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    if address:
        runtime_env = {"working_dir": project_root, "excludes": SHIPPED_EXCLUDES, "env_vars": env_vars}
        return {**kwargs, "address": address, "runtime_env": runtime_env}
    env_vars["PYTHONPATH"] = os.pathsep.join(filter(None, [project_root, os.environ.get("PYTHONPATH")]))
    return {**kwargs, "num_cpus": os.cpu_count(), "runtime_env": {"env_vars": env_vars}}


def run_trials(
    specs: list[TrialSpec],
    study_dir: Path,
    runner: str,
    *,
    resume: bool = False,
    cpus_per_trial: int = 1,
    max_concurrent: int | None = None,
    address: str | None = None,
    search: Search | None = None,
) -> tuple[dict[str, Outcome], float]:
    """Run (or resume) a study's trials on Ray Tune, with the study's console showing their progress.

    :param specs: the trials of a grid; with ``search``, only its first, the base every sample extends
    :param study_dir: the study directory, absolute (Ray's workers may run elsewhere); trials write under
        ``trials/`` there and Ray Tune its experiment under ``ray/``
    :param runner: the runner module each trial calls, by import path (``runners.ppo``)
    :param resume: continue the interrupted study in ``study_dir`` (Ray Tune's restore) instead of starting
    :param cpus_per_trial: CPUs, and torch threads, per trial
    :param max_concurrent: at most this many trials at once (default: as many as the CPUs allow)
    :param address: an existing Ray cluster (``auto``, ``ray://HOST:PORT``), or None for a local Ray
    :param search: an Optuna search instead of the grid ``specs``
    :return: each trial's outcome by name, and the wall time of this session in seconds
    """
    import ray
    from ray import tune

    from studies.console import ProgressCallback, StudyProgress, set_console, trial_dirname

    os.environ.setdefault("RAY_CHDIR_TO_TRIAL_DIR", "0")
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    # Ray starts workers at niceness 15; trials are the study's whole work, so they get a normal share.
    os.environ.setdefault("RAY_worker_niceness", "0")
    ray.init(**ray_init_kwargs(address, cpus_per_trial))
    quiet_ray()
    console = set_console(StudyProgress([] if search else specs))
    base = {"study_dir": str(study_dir), "threads": cpus_per_trial, "runner": runner}
    trainable = tune.with_resources(search_trial if search else run_trial, {"cpu": cpus_per_trial})
    start = time.time()
    console.start()
    try:
        if resume:
            tuner = tune.Tuner.restore(
                str(study_dir / "ray"), trainable, resume_unfinished=True, resume_errored=True
            )
        else:
            if search:
                from ray.tune.search.optuna import OptunaSearch

                param_space = {"spec": asdict(specs[0]), **base, "search": True, **search.space}
                tune_config = tune.TuneConfig(
                    search_alg=OptunaSearch(),
                    metric=search.metric,
                    mode=search.mode,
                    num_samples=search.num_samples,
                    max_concurrent_trials=max_concurrent,
                    trial_name_creator=trial_dirname,
                    trial_dirname_creator=trial_dirname,
                )
            else:
                param_space = {"spec": tune.grid_search([asdict(spec) for spec in specs]), **base}
                tune_config = tune.TuneConfig(
                    max_concurrent_trials=max_concurrent,
                    trial_name_creator=trial_dirname,
                    trial_dirname_creator=trial_dirname,
                )
            tuner = tune.Tuner(
                trainable,
                param_space=param_space,
                tune_config=tune_config,
                run_config=tune.RunConfig(
                    name="ray",
                    storage_path=str(study_dir),
                    verbose=0,
                    callbacks=[ProgressCallback()],
                    failure_config=tune.FailureConfig(max_failures=0),
                ),
            )
        results = tuner.fit()
    finally:
        console.stop()
    wall = time.time() - start
    outcomes = trial_outcomes(results, [] if search else specs)
    ray.shutdown()
    return outcomes, wall
