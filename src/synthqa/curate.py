"""A person's decisions about pairs: the append-only file ``OUT/curation.jsonl``, and applying it to rows.

``synthqa review`` appends one JSON line per decision and fsyncs it before the page hears back, so closing
the tab or killing the server loses nothing. The last line about a pair wins; ``clear`` takes a decision
back. The file is never rewritten: a decision about a pair that a later run no longer has stays in it (and
is reported), so it applies again if the pair comes back.

Each line records the question the person saw. A decision applies while the pair's question is still that
text; a question regenerated since (another model, prompt or temperature) is a different pair, and its old
decision is reported as outdated instead of being applied to text nobody looked at.

    {"id": "q-<chunk_id>-0", "decision": "reject", "question": "…", "text": null, "at": "2025-…Z"}
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import filters, styles
from .errors import OutputError

CURATION_FILE = "curation.jsonl"
DECISIONS = ("accept", "reject", "edit", "clear")


@dataclass(frozen=True, slots=True)
class Decision:
    """One decision about one pair (query id); ``text`` is the person's question when ``decision`` is edit."""

    id: str
    decision: str
    question: str  # the question as generated, when the person decided
    text: str | None = None
    at: str = ""  # UTC, ISO 8601

    @classmethod
    def now(cls, id: str, decision: str, question: str, text: str | None = None) -> Decision:
        at = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        return cls(id, decision, question, " ".join(text.split()) if text is not None else None, at)


@dataclass(frozen=True)
class Decisions:
    """What ``curation.jsonl`` says: the standing decision per pair, and how many lines said it."""

    latest: dict[str, Decision] = field(default_factory=dict)  # query id → last decision (cleared ones gone)
    lines: int = 0
    unreadable: tuple[int, ...] = ()  # line numbers that hold no decision (a hand edit, a torn write)


def curation_path(out: Path) -> Path:
    return Path(out) / CURATION_FILE


def read_decisions(out: Path) -> Decisions:
    """The decisions recorded in ``out``; an absent file is no decisions."""
    try:
        text = curation_path(out).read_text(encoding="utf-8")
    except FileNotFoundError:
        return Decisions()
    latest: dict[str, Decision] = {}
    lines, unreadable = 0, []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        lines += 1
        decision = _parse(line)
        if decision is None:
            unreadable.append(number)
        elif decision.decision == "clear":
            latest.pop(decision.id, None)
        else:
            latest[decision.id] = decision
    return Decisions(latest, lines, tuple(unreadable))


def _parse(line: str) -> Decision | None:
    try:
        data = json.loads(line)
        decision = Decision(**data)
    except (ValueError, TypeError):
        return None
    ok = (isinstance(decision.id, str) and decision.decision in DECISIONS and isinstance(decision.question, str)
          and (isinstance(decision.text, str) and decision.text.strip() if decision.decision == "edit" else True))
    return decision if ok else None


def append_decision(out: Path, decision: Decision) -> None:
    """Append one decision and force it to disk before returning."""
    path = curation_path(out)
    line = json.dumps(asdict(decision), ensure_ascii=False) + "\n"
    try:
        created = not path.exists()
        with open(path, "a+b") as f:
            if f.tell() > 0:  # a write torn by a power cut must not glue this line to the broken one
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    line = "\n" + line
            f.write(line.encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())
        if created:  # the new file's name must survive a power cut too
            fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    except OSError as err:
        raise OutputError(f"cannot record the decision in {path}: {err.strerror or err}") from None


@dataclass(frozen=True)
class Applied:
    """Rows after a person's decisions, and what happened to each decision."""

    rows: list[dict]
    accepted: tuple[str, ...] = ()
    rejected: tuple[str, ...] = ()
    edited: tuple[str, ...] = ()  # ids whose question is now the person's text
    missing: tuple[str, ...] = ()
    outdated: tuple[str, ...] = ()
    refused: dict[str, str] = field(default_factory=dict)  # id → filter reason; the generated question kept


def apply_decisions(rows: Sequence[dict], latest: Mapping[str, Decision], chunk_text: Mapping[str, str]) -> Applied:
    """Leave out rejected pairs and put edited questions in, re-checked by the question filters.

    ``rows`` are query rows (``id``, ``text``, ``chunk_id`` …) as the filters kept them; ``chunk_text`` maps
    chunk ids to their text. Row order is kept, so the split and every other column stay as they were.
    """
    by_id = {row["id"]: row for row in rows}
    missing = tuple(sorted(qid for qid in latest if qid not in by_id))
    outdated = tuple(sorted(qid for qid, d in latest.items() if qid in by_id and d.question != by_id[qid]["text"]))
    standing = {qid: d for qid, d in latest.items() if qid in by_id and qid not in outdated}
    rejected = {qid for qid, d in standing.items() if d.decision == "reject"}
    kept = [row for row in rows if row["id"] not in rejected]
    edits = {qid: d.text for qid, d in standing.items() if d.decision == "edit"}
    refused = refused_edits(kept, edits, chunk_text)
    edited = {qid: text for qid, text in edits.items() if qid not in refused}
    return Applied(
        rows=[dict(row, text=edited[row["id"]]) if row["id"] in edited else row for row in kept],
        accepted=tuple(sorted(qid for qid, d in standing.items() if d.decision == "accept")),
        rejected=tuple(sorted(rejected)),
        edited=tuple(sorted(edited)),
        missing=missing,
        outdated=outdated,
        refused=dict(sorted(refused.items())),
    )


def refused_edits(rows: Sequence[dict], edits: Mapping[str, str], chunk_text: Mapping[str, str]) -> dict[str, str]:
    """Which edits the filters of their query's style refuse, and why: each is checked on its own (too short,
    refers to "the text", copies its chunk, a keyword query that is a question …), then against the other
    queries of its style in ``rows`` and the edits before it for (near) duplicates."""
    # a run without --query-styles has no style column: every query is a question
    style_of = {row["id"]: row.get("style") or styles.QUESTION for row in rows}
    chunk_of = {row["id"]: row["chunk_id"] for row in rows}
    others: dict[str, list[str]] = {}
    for row in rows:
        if row["id"] not in edits:
            others.setdefault(style_of[row["id"]], []).append(row["text"])
    refused = {}
    for qid, text in edits.items():
        style = style_of[qid]
        same_style = others.setdefault(style, [])
        reason = (filters.question_drop_reason(text, chunk_text[chunk_of[qid]], style=style)
                  or filters.duplicate_reason(text, same_style))
        if reason is None:
            same_style.append(text)
        else:
            refused[qid] = reason
    return refused


def pending(out: Path, applied) -> int:
    """Decisions in ``out``'s file that the dataset does not hold yet (``applied``: its manifest's curation)."""
    return max(0, read_decisions(out).lines - (applied.decisions if applied is not None else 0))


def describe(curation) -> str:
    """One phrase for every renderer: "31 rejected, 12 edited, 40 accepted of 755 pairs, by a person"."""
    parts = [f"{curation.rejected} rejected", f"{curation.edited} edited"]
    if curation.accepted:
        parts.append(f"{curation.accepted} accepted as generated")
    text = f"{', '.join(parts)} of {curation.pairs_before} pairs, by a person"
    unapplied = [(len(curation.missing), "about pairs no longer generated"),
                 (len(curation.outdated), "about questions regenerated since"),
                 (len(curation.refused_edits), "edits refused by the question filters")]
    notes = [f"{n} {what}" for n, what in unapplied if n]
    return text + (f" (not applied: {'; '.join(notes)})" if notes else "")
