"""``jobctl bench``: every job at 1,000,000 users, timed through the normal runner.

How it works and the figures: docs/performance.md. :func:`run_bench` returns a
:class:`Report`; ``print_report`` and ``to_json`` show it.

- :mod:`jobctl.bench.dataset`: the seeded template database, built once, cloned per run;
- :mod:`jobctl.bench.timing`: each job through the runner, and the runner's overhead;
- :mod:`jobctl.bench.environment`: the handler's cold import, the asset's size, the machine;
- :mod:`jobctl.bench.targets`: the guide's estimates and the targets;
- :mod:`jobctl.bench.report`: the whole run and its report.
"""

from jobctl.bench.dataset import base_as_of, dataset_name, job_as_of, schema_key
from jobctl.bench.report import Report, print_report, run_bench, to_json
from jobctl.bench.targets import GUIDE_ESTIMATE_S, TARGET_S, guide_text, target_s

__all__ = [
    "GUIDE_ESTIMATE_S",
    "TARGET_S",
    "Report",
    "base_as_of",
    "dataset_name",
    "guide_text",
    "job_as_of",
    "print_report",
    "run_bench",
    "schema_key",
    "target_s",
    "to_json",
]
