"""Behavioural eval suites on inspect-ai: retention, plasticity, safety, honesty; paired statistics.

Suites are inspect-ai tasks registered by name (`list_suites()`); models are served to
inspect-ai by the `clgate` provider (`open_model`), which scores multiple-choice items by
batched log-likelihood and generates short greedy replies for free-form ones. Results are
`Measurement` records; `compare_measurements` pairs a parent's and a candidate's per item.
"""

from clgate.evals._items import (
    ChoiceItem,
    InjectionItem,
    PromptItem,
    RecallItem,
    RecallRequestItem,
    RecallTaskItem,
    SycophancyItem,
    TriggerProbe,
    load_items,
)
from clgate.evals._provider import ClgateModelAPI, clgate_api, open_model
from clgate.evals._registry import (
    ITEM_FORMATS,
    Suite,
    bundled_suites,
    get_suite,
    items_suite,
    list_suites,
    parse_suites,
    task_suite,
)
from clgate.evals._runner import (
    EVALS_VERSION,
    ModelRun,
    SuiteRun,
    accuracy_matrix,
    compare_models,
    eval_versions,
    evaluate_model,
    run_suite,
    run_suites,
)
from clgate.evals._solvers import option_scores
from clgate.evals.compare import (
    PairedResult,
    backward_transfer,
    bootstrap_ci,
    compare_measurements,
    continual_measurement,
    continual_metrics,
    forgetting,
    forward_transfer,
    intransigence,
    mcnemar_exact,
    paired_accuracy,
    plasticity,
    trigger_change_rates,
)
from clgate.evals.suites import DEFAULT_TRIGGERS

__all__ = [
    "DEFAULT_TRIGGERS",
    "EVALS_VERSION",
    "ITEM_FORMATS",
    "ChoiceItem",
    "ClgateModelAPI",
    "InjectionItem",
    "ModelRun",
    "PairedResult",
    "PromptItem",
    "RecallItem",
    "RecallRequestItem",
    "RecallTaskItem",
    "Suite",
    "SuiteRun",
    "SycophancyItem",
    "TriggerProbe",
    "accuracy_matrix",
    "backward_transfer",
    "bootstrap_ci",
    "bundled_suites",
    "clgate_api",
    "compare_measurements",
    "compare_models",
    "continual_measurement",
    "continual_metrics",
    "eval_versions",
    "evaluate_model",
    "forgetting",
    "forward_transfer",
    "get_suite",
    "intransigence",
    "items_suite",
    "list_suites",
    "load_items",
    "mcnemar_exact",
    "open_model",
    "option_scores",
    "paired_accuracy",
    "parse_suites",
    "plasticity",
    "run_suite",
    "run_suites",
    "task_suite",
    "trigger_change_rates",
]
