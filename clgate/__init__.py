"""clgate: a gate and an audit trail for continually learning LLMs.

The root package holds only what every layer shares: the version, the error hierarchy,
the `Measurement` record and the offline switch. Each capability lives in its own
subpackage (artifacts, ledger, probes, evals, audit, dashboard).
"""

from clgate._offline import force_offline
from clgate.errors import ClgateError, InputError, IntegrityError, PolicyError

__version__ = "0.1.0"

force_offline()

__all__ = ["ClgateError", "InputError", "IntegrityError", "PolicyError", "__version__", "force_offline"]
