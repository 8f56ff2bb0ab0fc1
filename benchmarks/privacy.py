"""How well the privacy check finds personal data, and what it costs, on a labelled set written here.

    python benchmarks/privacy.py [--items 2000] [--design-seed 0] [--held-out-seed 1]

Items are training-record messages and memory notes with one planted value each (e-mail, phone, card,
IBAN, national id, IP; each valid where its format has a checksum) and hard negatives with none:
arithmetic, order and tracking numbers, versions, timestamps, prices, card and IBAN look-alikes whose
checksums fail. The phrasings come in two families: `design` (short sentences, the ones the recognizer
set and threshold were chosen on) and `held-out` (values inside longer prose, CSV rows and JSON
snippets, never looked at while choosing), each drawn with its own seed. A detection counts when a
span of the planted kind overlaps the planted value; any other span of a kind is a false positive.

Prints precision and recall per kind for both families, and scan seconds per 1,000 items against the
seconds to read the same items from JSONL (the ratio is what the check adds to reading the data).
"""

from __future__ import annotations

import argparse
import json
import random
import string
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from clgate.artifacts import iter_dataset
from clgate.probes.privacy import PiiScanner, TextItem, data_items

FIRST = ["jane", "omar", "li", "sofia", "mateo", "amara", "kenji", "ines", "tomasz", "priya", "lucas", "zoe"]
LAST = ["doe", "haddad", "wei", "rossi", "garcia", "okafor", "tanaka", "silva", "nowak", "sharma", "meyer"]
DOMAINS = ["example.com", "example.org", "mail.example.net", "corp.example.co.uk", "example.de"]


def luhn_digit(body: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return str((10 - total % 10) % 10)


def iban_check(country: str, bban: str) -> str:
    digits = "".join(str(int(c, 36)) for c in bban + country + "00")
    return f"{98 - int(digits) % 97:02d}"


def email(rng: random.Random) -> str:
    return f"{rng.choice(FIRST)}{rng.choice(['.', '_', ''])}{rng.choice(LAST)}{rng.randint(1, 99)}@{rng.choice(DOMAINS)}"


def phone(rng: random.Random) -> str:
    area, exchange, line = rng.randint(201, 989), rng.randint(200, 989), rng.randint(0, 9999)
    return rng.choice([f"+1 {area}-{exchange}-{line:04d}", f"({area}) {exchange}-{line:04d}",
                       f"+44 20 7{rng.randint(100, 999)} {rng.randint(1000, 9999)}",
                       f"+49 30 {rng.randint(1000000, 9999999)}"])  # fmt: skip


def card(rng: random.Random) -> str:
    prefix, length = rng.choice([("4", 16), ("5" + str(rng.randint(1, 5)), 16), ("37", 15)])
    body = prefix + "".join(rng.choice(string.digits) for _ in range(length - len(prefix) - 1))
    number = body + luhn_digit(body)
    return " ".join(number[i : i + 4] for i in range(0, len(number), 4)) if rng.random() < 0.5 else number


def iban(rng: random.Random) -> str:
    country, bban = rng.choice([("DE", "".join(rng.choice(string.digits) for _ in range(18))),
                                ("GB", "NWBK" + "".join(rng.choice(string.digits) for _ in range(14)))])  # fmt: skip
    raw = country + iban_check(country, bban) + bban
    return " ".join(raw[i : i + 4] for i in range(0, len(raw), 4)) if rng.random() < 0.5 else raw


def national_id(rng: random.Random) -> str:
    if rng.random() < 0.5:  # a US SSN outside the ranges never issued
        return f"{rng.choice([rng.randint(1, 665), rng.randint(667, 899)]):03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"
    first, second = rng.choice("ABCEGHJKLMNOPRSTWXYZ"), rng.choice("ABCEGHJKLMNPRSTWXYZ")  # UK NINO
    return f"{first}{second}{rng.randint(0, 999999):06d}{rng.choice('ABCD')}"


def ip(rng: random.Random) -> str:
    if rng.random() < 0.8:
        return ".".join(str(rng.randint(1, 254)) for _ in range(4))
    return ":".join(f"{rng.randint(0, 65535):x}" for _ in range(8))


VALUES: dict[str, Callable[[random.Random], str]] = {
    "emails": email, "phone_numbers": phone, "card_numbers": card, "ibans": iban,
    "national_ids": national_id, "ip_addresses": ip,
}  # fmt: skip
NOUN = {"emails": "e-mail", "phone_numbers": "phone number", "card_numbers": "card number", "ibans": "IBAN",
        "national_ids": "national insurance or social security number", "ip_addresses": "IP address"}  # fmt: skip


def negative(rng: random.Random) -> str:
    body = "4" + "".join(rng.choice(string.digits) for _ in range(14))
    bad_card = body + str((int(luhn_digit(body)) + rng.randint(1, 9)) % 10)
    return rng.choice([
        f"What is {rng.randint(100, 99999)} * {rng.randint(10, 9999)}?",
        f"Order ORD-{rng.randint(2019, 2026)}-{rng.randint(10000, 99999)} shipped with tracking {rng.randint(10**11, 10**12 - 1)}.",
        f"Upgrade to version {rng.randint(1, 9)}.{rng.randint(0, 30)}.{rng.randint(0, 200)} before {rng.randint(2024, 2027)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d} {rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}.",
        f"The invoice total is ${rng.randint(1, 99)},{rng.randint(0, 999):03d}.{rng.randint(0, 99):02d} for {rng.randint(2, 400)} units.",
        f"Reference number {bad_card} could not be matched.",
        f"Population grew from {rng.randint(10**6, 10**7)} to {rng.randint(10**7, 10**8)} between censuses.",
        f"Pi to ten places is 3.1415926535; e is about 2.71828 and the batch id is {rng.randint(10**9, 10**10 - 1)}.",
    ])  # fmt: skip


DESIGN = [
    lambda noun, v: f"Please save my {noun}: {v}",
    lambda noun, v: f"The user's {noun} is {v}.",
    lambda noun, v: f"Sure, I have updated your {noun} to {v}.",
]
HELD_OUT = [
    lambda noun, v: (
        f"After the call on Tuesday the customer asked us to keep {v} on file as her {noun}, "
        "and to send the summary to the whole team before the weekly review."
    ),
    lambda noun, v: (
        f"id,name,{noun.split()[0]},status\n{random.Random(v).randint(100, 999)},A. Kowalski,{v},active"
    ),
    lambda noun, v: json.dumps({"customer": {"note": "verified", noun.split()[0]: v}}),
]


def labelled(n: int, seed: int, templates: list) -> list[tuple[str, str | None, str | None]]:
    """(text, kind, value): a third hard negatives (kind None), the rest one planted value each."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        if i % 3 == 2:
            out.append((negative(rng), None, None))
            continue
        kind = list(VALUES)[(i - i // 3) % len(VALUES)]
        value = VALUES[kind](rng)
        out.append((rng.choice(templates)(NOUN[kind], value), kind, value))
    return out


def score(
    scanner: PiiScanner, items: list[tuple[str, str | None, str | None]]
) -> dict[str, tuple[float, float, int]]:
    tp, fp, planted = Counter(), Counter(), Counter()
    for text, kind, value in items:
        at = text.index(value) if value else -1
        planted[kind] += 1
        hit = False
        for entity_kind, start, end in _spans(scanner, text):
            if entity_kind == kind and start < at + len(value) and end > at:
                hit = True
            else:
                fp[entity_kind] += 1
        tp[kind] += hit
    return {k: (tp[k] / max(tp[k] + fp[k], 1), tp[k] / planted[k], planted[k]) for k in VALUES}


def _spans(scanner: PiiScanner, text: str) -> list[tuple[str, int, int]]:
    return [(s.kind, s.start, s.end) for s in scanner.scan([TextItem("x", "t", text)])]


def speed(scanner: PiiScanner, items: list[tuple[str, str | None, str | None]]) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data.jsonl"
        path.write_text(
            "".join(json.dumps({"prompt": t, "completion": "Noted."}) + "\n" for t, _, _ in items)
        )
        start = time.perf_counter()
        sum(1 for _ in iter_dataset(path))
        read = time.perf_counter() - start
        start = time.perf_counter()
        scanner.scan(data_items(path))
        scan = time.perf_counter() - start
    return read, scan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--design-seed", type=int, default=0)
    parser.add_argument("--held-out-seed", type=int, default=1)
    args = parser.parse_args()
    start = time.perf_counter()
    scanner = PiiScanner()
    print(f"scanner ready in {time.perf_counter() - start:.1f} s (spaCy tokenizer, Presidio recognizers)")
    for family, templates, seed in (
        ("design", DESIGN, args.design_seed),
        ("held-out", HELD_OUT, args.held_out_seed),
    ):
        items = labelled(args.items, seed, templates)
        print(
            f"\n{family} phrasings, seed {seed}, {len(items)} items ({sum(k is None for _, k, _ in items)} negatives)"
        )
        print(f"{'kind':15} {'planted':>8} {'precision':>10} {'recall':>8}")
        for kind, (precision, recall, planted) in score(scanner, items).items():
            print(f"{kind:15} {planted:8d} {precision:10.3f} {recall:8.3f}")
        read, scan = speed(scanner, items)
        per = 1000 / len(items)
        print(f"read {read * per:.3f} s / 1,000 items, scan {scan * per:.3f} s / 1,000 items "
              f"(2 messages each): scan / read = {scan / read:.0f}×")  # fmt: skip


if __name__ == "__main__":
    main()
