"""The `Measurement` record: what a probe or an eval measured, with no judgement attached."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from clgate.atomic import write_text_atomic
from clgate.errors import InputError

if TYPE_CHECKING:
    import pandas as pd


class Measurement(BaseModel):
    """One probe's or eval's output. Only `clgate.audit` turns these into findings."""

    # inf and NaN are written as "Infinity"/"NaN" and read back, never turned into an unreadable null
    model_config = ConfigDict(frozen=True, ser_json_inf_nan="strings")

    schema_version: int = 1
    name: str = Field(default="", description="what made it; a registered probe or check stamps its own")
    version: str = Field(default="", description="of what made it, stamped with its name")
    parent: str | None = Field(default=None, description="manifest digest of the parent artifact")
    candidate: str | None = Field(default=None, description="manifest digest of the candidate artifact")
    numbers: dict[str, float] = Field(default_factory=dict)
    details: list[dict[str, Any]] = Field(default_factory=list, description="per-item rows")
    evidence: list[str] = Field(default_factory=list, description="paths of files written beside the JSON")
    meta: dict[str, Any] = Field(default_factory=dict)
    explain: dict[str, str] = Field(
        default_factory=dict, description="per number, in words, what is behind it (quoted by findings)"
    )

    def details_frame(self) -> pd.DataFrame:
        import pandas as pd  # the dashboard's extra; the core reads measurements without it

        return pd.DataFrame.from_records(self.details)

    def to_json(self) -> str:
        return self.model_dump_json(indent=2)

    @property
    def digest(self) -> str:
        """The SHA-256 of its JSON: what the ledger records, and what evidence and caches file it under."""
        return "sha256:" + hashlib.sha256(self.to_json().encode()).hexdigest()

    @classmethod
    def from_json(cls, text: str) -> Measurement:
        """Parse a stored measurement; anything malformed is an InputError naming the first problem."""
        try:
            measurement = cls.model_validate(json.loads(text))
        except (ValueError, ValidationError) as exc:
            raise InputError(f"not a valid measurement: {str(exc).splitlines()[0][:200]}") from None
        if not (measurement.name and measurement.version):  # stamped on every one that was ever stored
            raise InputError("not a valid measurement: it names no probe or check and version")
        return measurement

    def write(self, path: Path) -> Path:
        return write_text_atomic(path, self.to_json())
