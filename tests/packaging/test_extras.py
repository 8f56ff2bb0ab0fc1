"""Which extra a missing module comes from, read from clgate's own metadata."""

from __future__ import annotations

import pytest

from clgate.extras import extra_of, missing_extra


@pytest.mark.parametrize(
    ("distribution", "extra"),
    [("torch", "models"), ("inspect_ai", "evals"), ("presidio-analyzer", "privacy"), ("mlflow-skinny", "mlflow"),
     ("model-signing", "signing"), ("psycopg", "postgres"), ("streamlit", "dashboard"), ("pydantic", None)],
)  # fmt: skip
def test_each_optional_distribution_names_its_extra(distribution: str, extra: str | None) -> None:
    assert extra_of(distribution) == extra


def test_a_bug_is_never_reported_as_a_missing_extra() -> None:
    assert missing_extra("clgate.audit.no_such_module") is None  # clgate's own: a bug, not an install
    assert missing_extra("torch.no_such_module") is None  # installed but broken inside
    assert missing_extra("no_such_package_anywhere") is None
