"""Multi-seed studies and their reports, as a library under ``runners.study`` and ``runners.report``.

A study runs tasks x memories x seeds (x a grid of runner flags) as trials, each one run of a runner, and
reports them with rliable's statistics. One concept per module:

* ``tasks``: what a study runs on (an env, the sides of a suite, the tasks of a benchmark), with demos for BC;
* ``plan``: the trials (``TrialSpec``): seeds, grids, search spaces, settings as a runner's flags;
* ``machine``: the machine a study ran on and its speed yardstick;
* ``execution``: running the trials on Ray Tune (locally or on a cluster) and what became of each;
* ``console``: the study's console, fed by a Ray Tune callback;
* ``records``: ``study.json`` and ``trials.csv``, what a study writes beside its trials;
* ``runs``: reading run directories;
* ``scores``: runs grouped into report tasks and suites;
* ``statistics``: IQM, means, probabilities of improvement and their bootstrap intervals (rliable);
* ``plots``: the report's figures;
* ``report``: ``report.md``, the tables and the text around the figures.

Ray Tune, Optuna and rliable come with the ``study`` extra (``pip install -e ".[study]"``); the modules that
need them import them where they are used, so that planning and reading runs work without them. Nothing here
imports ``runners``: a study names the runner module its trials call (``runners.ppo``), and the trial imports
it by that name.
"""
