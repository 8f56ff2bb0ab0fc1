"""The privacy scan of an update: personal data in its training records and in the memory entries it
adds or edits, counted per kind, every span located and masked."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from clgate.artifacts import MemoryStore, iter_dataset, load_memory_store
from clgate.measurement import Measurement
from clgate.probes.privacy._pii import PiiScanner, PiiSpan, TextItem

VERSION = "1"


def data_items(path: Path) -> Iterator[TextItem]:
    """Every message of every training record, located as `record N` (1-based) and `messages[i].role`."""
    for n, record in enumerate(iter_dataset(Path(path)), start=1):
        for i, message in enumerate(record.messages):
            yield TextItem(f"record {n}", f"messages[{i}].{message.role}", message.content)


def memory_items(store: MemoryStore, old: MemoryStore | None = None) -> list[TextItem]:
    """The entries of `store` whose text `old` did not hold under their id (all of them without `old`)."""
    before = old.by_id() if old is not None else {}
    return [
        TextItem(e.id, "text", e.text)
        for e in store.entries
        if e.id not in before or before[e.id].text != e.text
    ]


def privacy_scan(
    data: Path | None = None,
    memory_new: Path | None = None,
    memory_old: Path | None = None,
    scanner: PiiScanner | None = None,
) -> Measurement:
    """Personal data in an update: its training records and the memory entries it adds or edits (with no
    old store: every entry). Numbers per kind (`card_numbers`, `data.card_numbers`, `memory.card_numbers`),
    the items that carry any, and `store.items_with_personal_data` over the whole new store."""
    started = time.perf_counter()
    scanner = scanner or PiiScanner()
    sources: dict[str, list[PiiSpan]] = {}
    scanned = 0
    if data is not None:
        items = list(data_items(data))
        scanned += len(items)
        sources["data"] = scanner.scan(items)
    store_with = None
    if memory_new is not None:
        new = load_memory_store(Path(memory_new))
        changed = {
            i.item
            for i in memory_items(
                new, load_memory_store(Path(memory_old)) if memory_old is not None else None
            )
        }
        scanned += len(changed)
        everywhere = scanner.scan(memory_items(new))
        sources["memory"] = [s for s in everywhere if s.item in changed]
        store_with = {s.item for s in everywhere}
    spans = [s for found in sources.values() for s in found]
    carriers = {(source, s.item) for source, found in sources.items() for s in found}
    numbers = {"items_scanned": float(scanned), "items_with_personal_data": float(len(carriers))}
    for kind in scanner.kinds:
        numbers[kind] = float(sum(s.kind == kind for s in spans))
        for source, found in sources.items():
            numbers[f"{source}.{kind}"] = float(sum(s.kind == kind for s in found))
    if store_with is not None:
        numbers["store.items_with_personal_data"] = float(len(store_with))
    return Measurement(
        name="privacy",
        version=VERSION,
        numbers=numbers,
        details=[{"source": source, **s.row()} for source, found in sources.items() for s in found],
        explain={kind: _explain(kind, spans) for kind in scanner.kinds if any(s.kind == kind for s in spans)},
        meta={
            "ner_model": scanner.ner_model,
            "kinds": list(scanner.kinds),
            "threshold": scanner.threshold,
            "seconds": time.perf_counter() - started,
        },
    )


def _explain(kind: str, spans: list[PiiSpan]) -> str:
    """Where the spans of one kind are, the busiest items first: what an auditor removes or justifies."""
    of_kind = [s for s in spans if s.kind == kind]
    where = Counter(s.item for s in of_kind)
    first = ", ".join(
        f"{item} ({next(s.masked for s in of_kind if s.item == item)}"
        + (f" and {n - 1} more)" if n > 1 else ")")
        for item, n in where.most_common(3)
    )
    more = f" and {len(where) - 3} more items" if len(where) > 3 else ""
    return f"in {first}{more}: remove them from the update, or record why it may carry them"
