"""Memory diff: how a long-term memory store changed, and whether the change reads like an injection.

Between two snapshots of one store (`memory_diff`): entries added, removed and edited (by id and
content hash); entries with no recorded provenance; semantic drift in MiniLM embedding space (centroid
shift, and how far the new entries sit from everything the store held before); and entries that read
as instructions to the model rather than facts about the world (`clgate.probes.instructions`, the
rules the poisoning detectors use too). Across the stores of several deployed instances
(`memetic_spread`): content that turns up in many of them, exactly or as a near-duplicate
(`clgate.probes.near_copies`), and where it appeared first.
"""

from clgate.probes.instructions import instruction_score, instruction_scores
from clgate.probes.memory._diff import memory_diff
from clgate.probes.memory._spread import memetic_spread

__all__ = ["instruction_score", "instruction_scores", "memetic_spread", "memory_diff"]
