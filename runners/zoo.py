"""The RL Zoo's own command line with MemoryPPO: ``python -m runners.zoo train --algo memory_ppo --env ID``.

Registers MemoryPPO with rl_zoo3 as ``memory_ppo`` (its algorithms, Optuna sampler and converter) and hands
the command to rl_zoo3 unchanged, so the Zoo's ``train`` (with ``-optimize`` for its Optuna search),
``enjoy``, ``record_video``, ``record_training``, plots and Hub scripts run MemoryPPO with any memory
(``policy_kwargs: "dict(memory='tlb')"``) and write the Zoo's usual folders
(``logs/memory_ppo/<env>_<n>/``). For ``memory_ppo`` the hyperparameters default to this package's
``hyperparams/memory_ppo.yml`` (the memory benchmark's tasks in the Zoo's format) unless ``-conf`` names
another file; MiniGrid/BabyAI envs get this package's observations there with ``env_wrapper:
envs.wrap_for_sb3``. Needs the ``zoo`` extra (``pip install -e ".[zoo]"``).
"""

from __future__ import annotations

import functools
import runpy
import sys
from pathlib import Path
from typing import Any

ALGO = "memory_ppo"
HYPERPARAMS_FILE = Path(__file__).resolve().parents[1] / "hyperparams" / f"{ALGO}.yml"
# rl_zoo3's scripts: those its own ``rl_zoo3`` command dispatches, and the modules it runs as scripts.
FUNCTION_SCRIPTS = ("train", "enjoy", "plot_train", "plot_from_file", "all_plots")
MODULE_SCRIPTS = ("record_video", "record_training", "push_to_hub", "load_from_hub", "benchmark")
USAGE = (
    f"usage: python -m runners.zoo {{{','.join(FUNCTION_SCRIPTS + MODULE_SCRIPTS)}}} [rl_zoo3 arguments] "
    f"(e.g. train --algo {ALGO} --env MiniGrid-MemoryS7-v0)"
)


def register() -> None:
    """Make ``memory_ppo`` one of rl_zoo3's algorithms, with an Optuna sampler that keeps the file's memory.

    Imports rl_zoo3's envs first, so its own ids (``CartPoleNoVel-v1``, ...) keep the Zoo's definitions.
    """
    import rl_zoo3.import_envs  # noqa: F401
    import rl_zoo3.train
    from rl_zoo3 import hyperparams_opt
    from rl_zoo3.utils import ALGOS

    import envs  # noqa: F401  (registers POPGym's ids, this package's levels and TLB-CartPoleNoVel-v1)
    from agents import MemoryPPO

    ALGOS[ALGO] = MemoryPPO
    hyperparams_opt.HYPERPARAMS_SAMPLER[ALGO] = hyperparams_opt.sample_ppo_params
    hyperparams_opt.HYPERPARAMS_CONVERTER[ALGO] = hyperparams_opt.convert_onpolicy_params
    rl_zoo3.train.ExperimentManager = memory_experiment_manager()


@functools.cache
def memory_experiment_manager() -> type:
    """rl_zoo3's ``ExperimentManager``, except that an Optuna trial of ``memory_ppo`` keeps the file's
    ``policy_kwargs`` (its memory, the memory's arguments) under the sampled ones: the Zoo's PPO sampler
    replaces ``policy_kwargs`` whole, which would tune the default memory instead of the file's."""
    from rl_zoo3 import hyperparams_opt
    from rl_zoo3.exp_manager import ExperimentManager

    class MemoryExperimentManager(ExperimentManager):
        def objective(self, trial: Any) -> float:
            if self.algo == ALGO:
                file_kwargs = dict(self._hyperparams.get("policy_kwargs") or {})

                def sample(*args: Any) -> dict[str, Any]:
                    sampled = hyperparams_opt.sample_ppo_params(*args)
                    sampled["policy_kwargs"] = {**file_kwargs, **sampled.get("policy_kwargs", {})}
                    return sampled

                hyperparams_opt.HYPERPARAMS_SAMPLER[ALGO] = sample
            return super().objective(trial)

    return MemoryExperimentManager


def with_default_config(script: str, argv: list[str]) -> list[str]:
    """``argv`` with ``-conf hyperparams/memory_ppo.yml`` added for a ``train --algo memory_ppo`` that names
    no file: the Zoo looks for ``hyperparams/<algo>.yml`` inside its own package otherwise."""
    algo = next((argv[i + 1] for i, word in enumerate(argv[:-1]) if word == "--algo"), None)
    algo = next((word.split("=", 1)[1] for word in argv if word.startswith("--algo=")), algo)
    has_config = any(word in ("-conf", "--conf-file") or word.startswith("--conf-file=") for word in argv)
    if script == "train" and algo == ALGO and not has_config:
        return [*argv, "--conf-file", str(HYPERPARAMS_FILE)]
    return argv


def main(argv: list[str] | None = None) -> int:
    """Run the rl_zoo3 script ``argv[0]`` with the rest of ``argv`` as its arguments."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] not in FUNCTION_SCRIPTS + MODULE_SCRIPTS:
        given = f"unknown script {argv[0]!r}; " if argv and not argv[0].startswith("-") else ""
        print(f"error: {given}{USAGE}", file=sys.stderr)
        return 2
    try:
        import rl_zoo3  # noqa: F401
    except ImportError:
        print('error: the RL Zoo is not installed: pip install -e ".[zoo]"', file=sys.stderr)
        return 2
    register()
    script, arguments = argv[0], with_default_config(argv[0], argv[1:])
    program = sys.argv[0]
    sys.argv = [f"runners.zoo {script}", *arguments]  # rl_zoo3's scripts parse sys.argv themselves
    try:
        if script in FUNCTION_SCRIPTS:
            import rl_zoo3.cli  # noqa: F401  (imports every script the rl_zoo3 command dispatches)
            from rl_zoo3.enjoy import enjoy
            from rl_zoo3.plots import all_plots, plot_from_file, plot_train
            from rl_zoo3.train import train

            functions = {
                "train": train,
                "enjoy": enjoy,
                "plot_train": plot_train,
                "plot_from_file": plot_from_file,
                "all_plots": all_plots,
            }
            functions[script]()
        else:
            runpy.run_module(f"rl_zoo3.{script}", run_name="__main__")
    finally:
        sys.argv = [program, *argv]
    return 0


if __name__ == "__main__":
    sys.exit(main())
