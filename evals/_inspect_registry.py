"""What inspect-ai loads through clgate's `inspect_ai` entry point, so that `inspect eval clgate/retention
--model clgate/PATH` runs a bundled suite on a local model without clgate's CLI.

Importing the modules is the registration: their `@task` and `@modelapi` decorators add each suite
(`clgate/retention`, `clgate/refusal`, ...) and the `clgate` model provider to inspect's registry.
inspect loads the entry point named `clgate` when it first meets a `clgate/...` name.
"""

from clgate.evals import _provider, suites

__all__ = ["_provider", "suites"]
