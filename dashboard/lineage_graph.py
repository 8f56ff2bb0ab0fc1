"""The lineage tree as a Graphviz DOT graph, which `st.graphviz_chart` lays out in the browser.

Deployment names and update ids come from the ledger, and a page is drawn before the ledger is
verified: node ids are generated here, and everything taken from the ledger goes into a quoted,
escaped DOT string, so no stored text can end a label, a statement or the graph.
"""

from __future__ import annotations

from itertools import count

from clgate.audit import Lineage, SlotNode

GRAPH = 'rankdir=LR; node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=11];'
BASE = {"fillcolor": "#ddf4ff", "color": "#0969da"}
NO_BASE = {"fillcolor": "#eaeef2", "color": "#8c959f", "style": "rounded,filled,dashed"}
DEPLOYMENT = {"fillcolor": "#ffffff", "color": "#57606a"}
CURRENT = {"fillcolor": "#dafbe1", "color": "#1a7f37"}
STALE = {"fillcolor": "#fff8c5", "color": "#9a6700", "penwidth": "2"}


def dot_text(text: str) -> str:
    """`text` escaped for the inside of a quoted DOT string.

    A quoted label is an escString: `\\"` is a quote, `\\\\` a backslash, and a backslash before a
    letter is a line break or a substitution (`\\N`, `\\G`), so both are escaped; control characters
    (line breaks included) become spaces.
    """
    text = "".join(" " if ord(ch) < 0x20 or ord(ch) == 0x7F else ch for ch in text)
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _attrs(lines: list[str], tooltip: str, style: dict[str, str]) -> str:
    label = "\\n".join(dot_text(line) for line in lines)
    extra = "".join(f', {key}="{value}"' for key, value in style.items())
    return f'[label="{label}", tooltip="{dot_text(tooltip)}"{extra}]'


def _short(digest: str) -> str:
    return f"{digest[:19]}…"


def _slot_lines(slot: SlotNode) -> list[str]:
    lines = [f"{slot.slot} {slot.update_id}", f"entry {slot.entry}"]
    if slot.stale:
        progress = f"stale: re-audit {slot.reaudit}"
        lines += [f"{progress} ({slot.reaudit_update})" if slot.reaudit_update else progress]
        lines += [f"built on {_short(slot.built_on)}"]
    return lines


def lineage_dot(lineage: Lineage) -> str:
    """One node per base, deployment and deployed adapter or memory; edges base → deployment → slot.

    Stale slots (built on another base than their deployment runs) are yellow and say how far their
    re-audit got."""
    ids = (f"n{i}" for i in count())
    out = ["digraph lineage {", f"  {GRAPH}"]
    for base in lineage.bases:
        base_id = next(ids)
        if base.digest:
            out.append(f"  {base_id} {_attrs([f'base {_short(base.digest)}'], base.digest, BASE)};")
        else:
            out.append(f"  {base_id} {_attrs(['no base deployed'], 'no base deployed', NO_BASE)};")
        for deployment in base.deployments:
            dep_id = next(ids)
            lines = [f"deployment {deployment.name}"]
            if deployment.base_update:
                lines.append(f"base update {deployment.base_update} (entry {deployment.base_entry})")
            out.append(f"  {dep_id} {_attrs(lines, deployment.name, DEPLOYMENT)};")
            out.append(f"  {base_id} -> {dep_id};")
            for slot in deployment.slots:
                slot_id = next(ids)
                style = STALE if slot.stale else CURRENT
                tooltip = f"{slot.slot} {slot.update_id} built on {slot.built_on}"
                out.append(f"  {slot_id} {_attrs(_slot_lines(slot), tooltip, style)};")
                out.append(f"  {dep_id} -> {slot_id};")
    out.append("}")
    return "\n".join(out)
