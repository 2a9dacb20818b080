"""Typed entity markers: ``@ * person * Bill Gates @ founded # ^ organization ^ Microsoft #``.

Punctuation carries the markers, so no new vocabulary has to be learned (TKRE's
fine-tuning input). A pair is represented by the encoder states at the two
opening markers. Long sentences are cut to a token window around the pair so
both markers always survive.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fsre_cli.documents import Candidate

HEAD_OPEN, HEAD_TYPE = "@", "*"
TAIL_OPEN, TAIL_TYPE = "#", "^"
# (head opener, head type marker, tail opener, tail type marker). Packed passes mark every
# mention alike, since one mention is the head of some pairs and the tail of others; their
# two-mention passes (and pre-training, in that mode) use the same style.
PAIR_STYLE = (HEAD_OPEN, HEAD_TYPE, TAIL_OPEN, TAIL_TYPE)
SHARED_STYLE = (HEAD_OPEN, HEAD_TYPE, HEAD_OPEN, HEAD_TYPE)

# token categories used by span masking (MSLM) and span pooling (SCL)
SPECIAL, OTHER, ENTITY, RELATION = 0, 1, 2, 3


@dataclass(frozen=True)
class PairSpec:
    """A pair inside `text`: character spans and schema types of head and tail."""

    text: str
    head_start: int
    head_end: int
    head_type: str
    tail_start: int
    tail_end: int
    tail_type: str

    @classmethod
    def of_candidate(cls, c: "Candidate") -> "PairSpec":
        """A candidate pair in its sentence's coordinates (mentions carry document offsets)."""
        base = c.sentence.start
        return cls(c.sentence.text, c.head.start - base, c.head.end - base, c.head.type,
                   c.tail.start - base, c.tail.end - base, c.tail.type)


@dataclass
class MarkedPair:
    input_ids: list[int]
    head_index: int  # token index of the head's opening marker
    tail_index: int
    categories: list[int]  # SPECIAL / OTHER / ENTITY / RELATION per token


def type_words(entity_type: str) -> str:
    """`ORG` -> `org`, `WORK_OF_ART` -> `work of art`: plain words the encoder already knows."""
    return entity_type.replace("_", " ").replace("-", " ").lower()


def wrap_mentions(text: str, marks: list[tuple[int, int, str, str, str]]) -> tuple[str, list[tuple[int, int]]]:
    """`text` with each (start, end, opener, type marker, type) mention wrapped as
    `` opener type-marker type words type-marker mention opener ``; `marks` sorted by start, not
    overlapping. Returns the marked text and, per mark, the char span of its wrapping (opening
    marker to closing marker, inclusive)."""
    out: list[str] = []
    spans: list[tuple[int, int]] = []
    cursor = length = 0
    for start, end, opener, typer_, etype in marks:
        before = text[cursor:start]
        wrapped = f" {opener} {typer_} {type_words(etype)} {typer_} {text[start:end]} {opener} "
        spans.append((length + len(before) + 1, length + len(before) + len(wrapped) - 1))
        out += [before, wrapped]
        length += len(before) + len(wrapped)
        cursor = end
    out.append(text[cursor:])
    return "".join(out), spans


def marked_text(pair: PairSpec, style: tuple[str, str, str, str] = PAIR_STYLE
                ) -> tuple[str, tuple[int, int], tuple[int, int]]:
    """The sentence with both entities wrapped; returns it with the char spans of the two
    wrapped entities (opening marker to closing marker, inclusive)."""
    head = (pair.head_start, pair.head_end, style[0], style[1], pair.head_type)
    tail = (pair.tail_start, pair.tail_end, style[2], style[3], pair.tail_type)
    head_first = pair.head_start <= pair.tail_start
    text, spans = wrap_mentions(pair.text, [head, tail] if head_first else [tail, head])
    return (text, spans[0], spans[1]) if head_first else (text, spans[1], spans[0])


def special_ids(tokenizer) -> tuple[int, int]:
    """The ids that open and close a sequence ([CLS]/[SEP], or <s>/</s>)."""
    cls_id = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
    sep_id = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
    return cls_id, sep_id


def mark_pair(pair: PairSpec, tokenizer, max_length: int = 128,
              style: tuple[str, str, str, str] = PAIR_STYLE) -> MarkedPair:
    """Tokenize the marked sentence and locate the markers, cutting long inputs around the pair."""
    return mark_pairs([pair], tokenizer, max_length, style)[0]


def mark_pairs(pairs: list[PairSpec], tokenizer, max_length: int = 128,
               style: tuple[str, str, str, str] = PAIR_STYLE) -> list[MarkedPair]:
    """`mark_pair` for many pairs with one batched (Rust) tokenizer call: on a CPU the
    per-pair Python overhead would otherwise rival the encoder's own cost."""
    if not pairs:
        return []
    marked = [marked_text(p, style) for p in pairs]
    enc = tokenizer([m[0] for m in marked], add_special_tokens=False, return_offsets_mapping=True)
    return [
        _locate(ids, offsets, head_span, tail_span, tokenizer, max_length)
        for ids, offsets, (_, head_span, tail_span) in zip(enc["input_ids"], enc["offset_mapping"], marked)
    ]


def first_token_at(offsets: list[tuple[int, int]], char_pos: int) -> int:
    """The token covering `char_pos`, else the first one after it (a tokenizer whose offsets
    include a leading space starts the marker's token before the marker itself)."""
    for i, (s, e) in enumerate(offsets):
        if s <= char_pos < e or s >= char_pos:
            return i
    return len(offsets) - 1


def _locate(ids: list[int], offsets: list[tuple[int, int]], head_span: tuple[int, int], tail_span: tuple[int, int],
            tokenizer, max_length: int) -> MarkedPair:

    def last_token_before(char_end: int) -> int:
        idx = 0
        for i, (s, _e) in enumerate(offsets):
            if s < char_end:
                idx = i
        return idx

    h0, h1 = first_token_at(offsets, head_span[0]), last_token_before(head_span[1])
    t0, t1 = first_token_at(offsets, tail_span[0]), last_token_before(tail_span[1])
    categories = [OTHER] * len(ids)
    for a, b in ((h0, h1), (t0, t1)):
        for i in range(a, b + 1):
            categories[i] = ENTITY
    lo, hi = (h1, t0) if h0 < t0 else (t1, h0)
    for i in range(lo + 1, hi):
        categories[i] = RELATION

    budget = max_length - 2  # [CLS] ... [SEP]
    keep = _window(len(ids), [(h0, h1), (t0, t1)], budget)
    if len(keep) < len(ids):
        ids = [ids[i] for i in keep]
        categories = [categories[i] for i in keep]
    position = {old: new for new, old in enumerate(keep)}
    cls_id, sep_id = special_ids(tokenizer)
    return MarkedPair(
        input_ids=[cls_id] + list(ids) + [sep_id],
        head_index=position[h0] + 1,
        tail_index=position[t0] + 1,
        categories=[SPECIAL] + categories + [SPECIAL],
    )


def _window(n: int, required: list[tuple[int, int]], budget: int) -> list[int]:
    """Indices of tokens to keep: the entity spans first (at least their opening markers),
    then the tokens nearest to the pair, in order."""
    if n <= budget:
        return list(range(n))
    keep: set[int] = set()
    for a, b in required:  # an over-long entity keeps its first tokens
        keep.update(range(a, min(b + 1, a + max(1, budget // 4))))
    lo = min(a for a, _ in required)
    hi = max(b for _, b in required)
    # the text between the two entities, then context on both sides, nearest first
    between = [i for i in range(lo, hi + 1) if i not in keep]
    for i in between:
        if len(keep) >= budget:
            break
        keep.add(i)
    left, right = lo - 1, hi + 1
    while len(keep) < budget and (left >= 0 or right < n):
        if left >= 0:
            keep.add(left)
            left -= 1
        if right < n and len(keep) < budget:
            keep.add(right)
            right += 1
    return sorted(keep)
