"""The probe prompt set: harmful and harmless instructions and general prompts, bundled or given."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from clgate.package_data import package_lines


@dataclass(frozen=True)
class ProbePrompts:
    """Harmful and harmless instructions (for the refusal direction) and general prompts (for drift)."""

    harmful: tuple[str, ...]
    harmless: tuple[str, ...]
    general: tuple[str, ...]

    @property
    def texts(self) -> tuple[str, ...]:
        return self.harmful + self.harmless + self.general

    def digest(self) -> str:
        text = "\x1e".join("\x1f".join(group) for group in (self.harmful, self.harmless, self.general))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


def activation_prompts() -> ProbePrompts:
    """The bundled set (`probes/data/`)."""
    harmful, harmless, general = (
        tuple(package_lines("clgate.probes", "data", f"{group}.txt"))
        for group in ("harmful", "harmless", "general")
    )
    return ProbePrompts(harmful, harmless, general)
