"""Personal data in text, found by Presidio's recognizers: patterns validated by their checksums where
the format has one (cards by Luhn, IBANs by mod-97, national ids by their check digits), names and
places through a spaCy NER pipeline when one is installed.

Nothing is downloaded: Presidio would fetch a missing spaCy model, and its e-mail check would fetch
the public suffix list, so both are given offline equivalents here. A value found leaves this module
only masked (`PiiSpan.masked`); the raw value stays in memory for the memorisation probe.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from clgate.errors import InputError

KINDS: dict[str, str] = {
    "EMAIL_ADDRESS": "emails",
    "PHONE_NUMBER": "phone_numbers",
    "CREDIT_CARD": "card_numbers",
    "IBAN_CODE": "ibans",
    "US_SSN": "national_ids",
    "UK_NINO": "national_ids",
    "ES_NIF": "national_ids",
    "IT_FISCAL_CODE": "national_ids",
    "IN_AADHAAR": "national_ids",
    "IP_ADDRESS": "ip_addresses",
    "PERSON": "names",
    "LOCATION": "locations",
}
"""Presidio's entity types, by the name of the number clgate counts them under."""
NER_KINDS = ("names", "locations")
"""Found only with an NER pipeline: without one they are not searched (their numbers are absent, not 0)."""
THRESHOLD = 0.4
"""Presidio's score a span needs: its phone matches score 0.4, its weakest id patterns (bare digits with no
checksum and no context word) lower."""
PHONE_BASE_SCORE = 0.4
"""Presidio's score for a phone number with no context word beside it."""


@dataclass(frozen=True)
class TextItem:
    """One text to scan, and where it is: a training record's message or a memory entry."""

    item: str
    field: str
    text: str


@dataclass(frozen=True)
class PiiSpan:
    """One piece of personal data found. `value` is never written anywhere: reports get `masked`."""

    item: str
    field: str
    entity: str
    kind: str
    start: int
    end: int
    score: float
    value: str = field(repr=False)

    @property
    def masked(self) -> str:
        """The first character and the last two, so an auditor holding the data can recognise it."""
        v = self.value
        return v[0] + "*" * (len(v) - 3) + v[-2:] if len(v) >= 8 else "*" * len(v)

    def row(self) -> dict[str, Any]:
        return {
            "item": self.item,
            "field": self.field,
            "kind": self.kind,
            "entity": self.entity,
            "start": self.start,
            "end": self.end,
            "score": round(self.score, 3),
            "masked": self.masked,
        }


class PiiScanner:
    """Presidio's analyzer with clgate's recognizers, offline. `ner_model`: an installed spaCy pipeline
    (package name or folder) for names and places; None searches only the patterns."""

    def __init__(self, ner_model: str | None = None, threshold: float = THRESHOLD) -> None:
        if not 0.0 < threshold <= 1.0:  # NaN too: a threshold no score reaches would report nothing
            raise InputError(f"threshold {threshold} is not a score in (0, 1]")
        import spacy
        from presidio_analyzer import AnalyzerEngine, RecognizerRegistry

        nlp = spacy.blank("en") if ner_model is None else _load_pipeline(ner_model)
        recognizers = _pattern_recognizers()
        if ner_model is not None:
            from presidio_analyzer.predefined_recognizers import SpacyRecognizer

            recognizers.append(SpacyRecognizer(supported_entities=["PERSON", "LOCATION"]))
        self.ner_model = ner_model
        self.threshold = threshold
        self.kinds = tuple(dict.fromkeys(k for k in KINDS.values() if ner_model or k not in NER_KINDS))
        self._analyzer = AnalyzerEngine(
            registry=RecognizerRegistry(recognizers=recognizers, supported_languages=["en"]),
            nlp_engine=_spacy_engine(nlp),
            supported_languages=["en"],
        )

    def find(self, text: str) -> list[tuple[str, int, int, float]]:
        """(entity, start, end, score) of every span at or above the threshold, in text order.

        Spans of different kinds that overlap keep the strongest (an IBAN's digit groups are not also a
        card number, nor an IP address a phone number); a run of bare digits is a phone number only with
        a context word beside it ("phone", "mobile", …, which raises Presidio's score above its base)."""
        results = self._analyzer.analyze(
            text, language="en", entities=list(KINDS), score_threshold=self.threshold
        )
        kept: list[Any] = []
        for r in sorted(results, key=lambda r: (-r.score, r.start - r.end, r.start)):
            bare_phone = r.entity_type == "PHONE_NUMBER" and text[r.start : r.end].isdigit()
            if (bare_phone and r.score <= PHONE_BASE_SCORE) or any(
                r.start < k.end and k.start < r.end for k in kept
            ):
                continue
            kept.append(r)
        return sorted((r.entity_type, r.start, r.end, r.score) for r in kept)

    def scan(self, items: Iterable[TextItem]) -> list[PiiSpan]:
        return [
            PiiSpan(i.item, i.field, entity, KINDS[entity], start, end, score, i.text[start:end])
            for i in items
            for entity, start, end, score in self.find(i.text)
        ]


def _load_pipeline(name: str) -> Any:
    import spacy

    try:
        nlp = spacy.load(name)
    except OSError:
        raise InputError(
            f"no spaCy pipeline {name!r} is installed here (install its package, or give its folder); "
            "clgate never downloads one"
        ) from None
    if "ner" not in nlp.pipe_names and "entity_ruler" not in nlp.pipe_names:
        raise InputError(f"spaCy pipeline {name!r} has no named-entity component (ner or entity_ruler)")
    return nlp


def _pattern_recognizers() -> list[Any]:
    import tldextract
    from presidio_analyzer.predefined_recognizers import (
        CreditCardRecognizer,
        EmailRecognizer,
        EsNifRecognizer,
        IbanRecognizer,
        InAadhaarRecognizer,
        IpRecognizer,
        ItFiscalCodeRecognizer,
        PhoneRecognizer,
        UkNinoRecognizer,
        UsSsnRecognizer,
    )

    class OfflineEmail(EmailRecognizer):
        """Presidio's e-mail recognizer checks the domain against the public suffix list it downloads;
        this one uses the list tldextract ships."""

        suffixes = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)

        def validate_result(self, pattern_text: str) -> bool:
            return self.suffixes(pattern_text).fqdn != ""

    return [
        OfflineEmail(),
        PhoneRecognizer(),
        CreditCardRecognizer(),
        IbanRecognizer(),
        UsSsnRecognizer(),
        UkNinoRecognizer(),
        EsNifRecognizer(),
        ItFiscalCodeRecognizer(),
        InAadhaarRecognizer(),
        IpRecognizer(),
    ]


def _spacy_engine(nlp: Any) -> Any:
    """Presidio's spaCy engine over a pipeline loaded here (its own `load` downloads a missing model).
    A pipeline without a lemmatizer gives each token's lower-case text as its lemma, so Presidio's
    context words ("phone", "iban", "ssn") still raise a match's score."""
    from presidio_analyzer.nlp_engine import SpacyNlpEngine

    class LoadedSpacy(SpacyNlpEngine):
        def load(self) -> None:
            self.nlp = {"en": nlp}

        def process_text(self, text: str, language: str) -> Any:
            doc = self.nlp[language](text)
            for token in doc:
                token.lemma_ = token.lemma_ or token.lower_
            return self._doc_to_nlp_artifact(doc, language)

    engine = LoadedSpacy(models=[{"lang_code": "en", "model_name": "clgate"}])
    engine.load()
    return engine
