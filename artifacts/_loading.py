"""One model load at a time in this process.

transformers' `from_pretrained` builds a model on the meta device and swaps torch's default device
and weight initialisers for the whole process while it loads, so two loads on two threads (the
gate's two check lanes: a model check, and the memory checks' embedder beside it) can leave one of
them with meta tensors ("Cannot copy out of meta tensor"). Every load takes this lock.
"""

from __future__ import annotations

import threading

MODEL_LOADING = threading.RLock()
