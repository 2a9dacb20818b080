"""How pairs become encoder inputs: one marked copy of the sentence per pair, per head, or per sentence.

`pair` (the reference mode) wraps a pair's head and tail in typed markers, one encoder pass
per pair: a sentence with 8 entities is encoded 56 times. `head` (PL-Marker's subject-oriented
packing) makes one pass per head mention: the head in head markers and every tail of its pairs
in tail markers, so each pass is still conditioned on its head; 8 passes for that sentence.
`sentence` packs further: one pass per sentence with the same typed marker around *every*
mention, each pair read off its head's and tail's opening-marker states, in that order (the
entity markers of ATLOP). All modes train and score through `Encoded`: marked sequences, and
for every pair where to read it.

A packed pass marks the mentions of the pairs it is given, so a sentence's pairs are scored in
one call (the pipeline does). Mentions that overlap another one of the same pass, or a pass
longer than `packed_limit` tokens, fall back to a pass of their own per pair, in the same
marker style.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Hashable, Sequence

from fsre_cli.errors import UsageError
from fsre_cli.tkre.markers import (HEAD_OPEN, HEAD_TYPE, OTHER, PAIR_STYLE, SHARED_STYLE, SPECIAL, TAIL_OPEN, TAIL_TYPE,
                                   MarkedPair, PairSpec, first_token_at, mark_pairs, special_ids, wrap_mentions)

PACKINGS = ("pair", "head", "sentence")
PACKED_MAX_LENGTH = 256  # tokens of a packed pass, markers included; longer sentences fall back per pair

MentionKey = tuple[int, int, str]  # start, end, type in the sentence's coordinates


def tile_rows(packing: str, batch_size: int) -> int:
    """Sequences per fixed-shape scoring tile for `batch_size` (`--batch-size`): that many
    per-pair passes, a quarter as many head passes, an eighth as many sentence passes. A packed
    pass holds several pairs, and each length bucket of a flush holds few of them, so full-size
    tiles would be mostly repeated padding rows (measured: 8 rows score CrossRE ai's sentence
    passes 6x faster than 64)."""
    return {"pair": batch_size, "head": max(1, batch_size // 4)}.get(packing, max(1, batch_size // 8))


# Candidate pairs the pipeline gathers before scoring: packed passes need more sentences per
# call to fill their tiles, and cost a tenth of the encoder work per pair.
FLUSH_PAIRS = {"pair": 2048, "head": 4096, "sentence": 8192}


def check_packing(packing: str) -> str:
    if packing not in PACKINGS:
        raise UsageError(f"--packing must be one of {', '.join(PACKINGS)}, not {packing!r}")
    return packing


def style_of(packing: str) -> tuple[str, str, str, str]:
    """The marker style a mode trains and scores with (its pre-training items use it too)."""
    return SHARED_STYLE if packing == "sentence" else PAIR_STYLE


@dataclass
class Encoded:
    """Marked sequences and, per pair (in the order given), the sequence and the token indices
    of its head's and tail's opening markers."""

    sequences: list[MarkedPair]
    reads: list[tuple[int, int, int]]
    reads_of: list[list[int]] = field(default_factory=list)  # sequence -> its pairs

    def __post_init__(self) -> None:
        if not self.reads_of:
            self.reads_of = [[] for _ in self.sequences]
            for pair, (seq, _h, _t) in enumerate(self.reads):
                self.reads_of[seq].append(pair)

    def __len__(self) -> int:
        return len(self.reads)

    @property
    def lengths(self) -> list[int]:
        return [len(s.input_ids) for s in self.sequences]

    @classmethod
    def per_pair(cls, marked: Sequence[MarkedPair]) -> "Encoded":
        return cls(list(marked), [(i, m.head_index, m.tail_index) for i, m in enumerate(marked)])


def encode_pairs(pairs: Sequence[PairSpec], tokenizer, max_length: int = 128, packing: str = "pair",
                 sentences: Sequence[Hashable] | None = None) -> Encoded:
    """The encoder inputs for `pairs` in mode `packing` (see the module docstring). `sentences`
    names each pair's sentence (default: its text), so that two sentences with the same words
    but other mentions never share a pass."""
    if check_packing(packing) == "pair":
        return Encoded.per_pair(mark_pairs(list(pairs), tokenizer, max_length))
    groups: dict[Hashable, list[int]] = {}
    for i, p in enumerate(pairs):
        sentence = p.text if sentences is None else sentences[i]
        groups.setdefault((sentence, _head(p)) if packing == "head" else sentence, []).append(i)
    # per pass: text, the mentions it marks with their (opener, type marker), the pairs read off it
    plans: list[tuple[str, list[tuple[MentionKey, str, str]], list[int]]] = []
    alone: list[int] = []
    for members in groups.values():
        text = pairs[members[0]].text
        if packing == "head":  # the head in head markers, every tail of its pairs in tail markers
            head = _head(pairs[members[0]])
            tails = _packable(pairs, members, fixed=head) - {head}
            marks = [(head, HEAD_OPEN, HEAD_TYPE)] + [(t, TAIL_OPEN, TAIL_TYPE) for t in tails]
            inside = [i for i in members if _tail(pairs[i]) in tails]
        else:  # every mention alike
            marked = _packable(pairs, members)
            marks = [(m, HEAD_OPEN, HEAD_TYPE) for m in marked]
            inside = [i for i in members if _head(pairs[i]) in marked and _tail(pairs[i]) in marked]
        taken = set(inside)
        alone += [i for i in members if i not in taken]
        if inside:
            plans.append((text, sorted(marks), inside))
    limit = packed_limit(tokenizer, max_length)
    packed = _mark_packed([(text, marks) for text, marks, _ in plans], tokenizer, limit)
    sequences: list[MarkedPair] = []
    reads: list[tuple[int, int, int] | None] = [None] * len(pairs)
    for (text, marks, inside), result in zip(plans, packed):
        if result is None:  # too long to pack
            alone += inside
            continue
        sequence, marker_at = result
        seq = len(sequences)
        sequences.append(sequence)
        for i in inside:
            reads[i] = (seq, marker_at[_head(pairs[i])], marker_at[_tail(pairs[i])])
    singles = mark_pairs([pairs[i] for i in alone], tokenizer, max_length, style_of(packing))
    for i, single in zip(alone, singles):
        reads[i] = (len(sequences), single.head_index, single.tail_index)
        sequences.append(single)
    return Encoded(sequences, reads)  # type: ignore[arg-type]


def _head(p: PairSpec) -> MentionKey:
    return (p.head_start, p.head_end, p.head_type)


def _tail(p: PairSpec) -> MentionKey:
    return (p.tail_start, p.tail_end, p.tail_type)


def _packable(pairs: Sequence[PairSpec], members: Sequence[int], fixed: MentionKey | None = None) -> set[MentionKey]:
    """The mentions one pass can mark: no two overlap (the same span with two types counts as
    overlapping). When some do, `fixed` wins, then those in the most pairs, then the earliest."""
    uses: dict[MentionKey, int] = {}
    for i in members:
        for m in (_head(pairs[i]), _tail(pairs[i])):
            uses[m] = uses.get(m, 0) + 1
    chosen: list[MentionKey] = [fixed] if fixed is not None else []
    uses.pop(fixed, None)
    for m in sorted(uses, key=lambda m: (-uses[m], m)):
        if all(m[1] <= c[0] or c[1] <= m[0] for c in chosen):
            chosen.append(m)
    return set(chosen)


def packed_limit(tokenizer, max_length: int) -> int:
    """Tokens a packed pass may hold: `PACKED_MAX_LENGTH` (or `max_length` when larger), within
    what the encoder's positions allow."""
    model_max = getattr(tokenizer, "model_max_length", None)
    positions = model_max if isinstance(model_max, int) and 0 < model_max < 100_000 else 512
    return min(max(PACKED_MAX_LENGTH, max_length), positions)


def _mark_packed(items: Sequence[tuple[str, list[tuple[MentionKey, str, str]]]], tokenizer, limit: int
                 ) -> list[tuple[MarkedPair, dict[MentionKey, int]] | None]:
    """Each text with every listed mention wrapped in its markers (one batched tokenizer call):
    the sequence and each mention's opening-marker token, or None when it would exceed `limit`."""
    if not items:
        return []
    wrapped = [wrap_mentions(text, [(m[0], m[1], opener, typer_, m[2]) for m, opener, typer_ in marks])
               for text, marks in items]
    enc = tokenizer([text for text, _ in wrapped], add_special_tokens=False, return_offsets_mapping=True)
    cls_id, sep_id = special_ids(tokenizer)
    results: list[tuple[MarkedPair, dict[MentionKey, int]] | None] = []
    for (_text, marks), (_, spans), ids, offsets in zip(items, wrapped, enc["input_ids"], enc["offset_mapping"]):
        if len(ids) + 2 > limit:
            results.append(None)
            continue
        marker_at = {mention: first_token_at(offsets, start) + 1  # after [CLS]
                     for (mention, _opener, _typer), (start, _end) in zip(marks, spans)}
        # packed passes only fine-tune and score (pre-training marks single pairs): no categories
        categories = [SPECIAL] + [OTHER] * len(ids) + [SPECIAL]
        results.append((MarkedPair([cls_id] + list(ids) + [sep_id], 0, 0, categories), marker_at))
    return results
