"""Benchmark readers: FewRel episodes, CrossRE and Re-DocRED sentences, K-shot schemas built from them.

All three datasets come tokenised. We rebuild each sentence's text by joining its tokens with
single spaces, and turn token spans into character spans of that text, so that
``text[span.start:span.end] == span.text`` holds for every mention, just as for the documents
`fsre extract` reads. The data files are read where they lie (e.g. /work/shared/data); nothing is
copied.

The relation descriptions and QA4RE templates used for the benchmarks live here too:
`CROSSRE_DESCRIPTIONS`/`CROSSRE_TEMPLATES` (CrossRE's 17 labels) and
`REDOCRED_TEMPLATES`/`redocred_descriptions` (Wikidata properties of Re-DocRED).
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Literal, Mapping, Sequence

from fsre_cli.documents import Document, EntitySpan
from fsre_cli.errors import UsageError
from fsre_cli.inputs import read_records
from fsre_cli.schema import Example, Relation, Schema, Span

NOTA_LABEL = "NA"
FEWREL_ENTITY_TYPE = "ENTITY"


# --------------------------------------------------------------------------- tokens -> text
def tokens_to_text(tokens: Sequence[str]) -> tuple[str, list[tuple[int, int]]]:
    """Join tokens with single spaces; return the text and each token's (start, end) in it."""
    offsets: list[tuple[int, int]] = []
    pos = 0
    for tok in tokens:
        offsets.append((pos, pos + len(tok)))
        pos += len(tok) + 1
    return " ".join(tokens), offsets


def _span(text: str, offsets: list[tuple[int, int]], first: int, last: int, etype: str) -> Span:
    """A Span covering tokens first..last (inclusive)."""
    start, end = offsets[first][0], offsets[last][1]
    return Span(start, end, etype, text[start:end])


def _read_json(path: str | Path) -> Any:
    path = Path(path)
    try:
        with path.open(encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}:{exc.lineno}: invalid JSON: {exc.msg}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read: {exc}") from None


# --------------------------------------------------------------------------- FewRel
@dataclass(frozen=True)
class Instance:
    """One FewRel sentence: head and tail spans (type ENTITY) and its relation id."""

    text: str
    head: Span
    tail: Span
    relation: str


@dataclass
class Episode:
    """An N-way K-shot task: `support[i]` holds the K instances of `relations[i]`;
    `labels[j]` is the gold relation id of `query[j]` (`NOTA_LABEL` for none-of-the-above queries)."""

    relations: list[str]
    support: list[list[Instance]]
    query: list[Instance]
    labels: list[str]


def load_fewrel(path: str | Path) -> dict[str, list[Instance]]:
    """Read a FewRel file ``{relation: [{"tokens", "h": [name, id, [[idx...], ...]], "t": ...}]}``.

    When an entity lists several mentions, the first is used (as FewRel's own code does)."""
    raw = _read_json(path)
    if not isinstance(raw, dict):
        raise UsageError(f"{path}: expected an object mapping relation ids to instance lists")
    out: dict[str, list[Instance]] = {}
    for rel, items in raw.items():
        insts = []
        for i, item in enumerate(items):
            try:
                text, offsets = tokens_to_text(item["tokens"])
                spans = []
                for slot in ("h", "t"):
                    idx = item[slot][2][0]
                    spans.append(_span(text, offsets, min(idx), max(idx), FEWREL_ENTITY_TYPE))
            except (KeyError, IndexError, TypeError, ValueError) as exc:
                raise UsageError(f"{path}: {rel}[{i}]: malformed FewRel instance ({exc!r})") from None
            insts.append(Instance(text, spans[0], spans[1], rel))
        out[rel] = insts
    return out


# Wikidata properties used by Re-DocRED that FewRel's pid2name.json lacks (time and date properties).
_EXTRA_PIDS: dict[str, tuple[str, str]] = {
    "P569": ("date of birth", "date on which the subject was born"),
    "P570": ("date of death", "date on which the subject died"),
    "P571": ("inception", "date or point in time when the subject came into existence"),
    "P576": ("dissolved, abolished or demolished", "point in time at which the subject ceased to exist"),
    "P577": ("publication date", "date or point in time when a work was first published or released"),
    "P580": ("start time", "time an item begins to exist or a statement starts being valid"),
    "P582": ("end time", "time an item ceases to exist or a statement stops being valid"),
    "P585": ("point in time", "time and date something took place, existed or a statement was true"),
}


def _pid_table(pid2name_path: str | Path) -> dict[str, tuple[str, str]]:
    raw = _read_json(pid2name_path)
    if not isinstance(raw, dict):
        raise UsageError(f"{pid2name_path}: expected an object {{pid: [name, description]}}")
    table = {pid: (str(v[0]), str(v[1]) if len(v) > 1 else "") for pid, v in raw.items()}
    for pid, v in _EXTRA_PIDS.items():
        table.setdefault(pid, v)
    return table


def relation_names(pid2name_path: str | Path) -> dict[str, str]:
    """pid -> property name, from FewRel's pid2name.json (plus the date properties it lacks)."""
    return {pid: v[0] for pid, v in _pid_table(pid2name_path).items()}


def sample_episodes(
    data: Mapping[str, Sequence[Instance]],
    n_way: int,
    k_shot: int,
    n_query: int,
    n_episodes: int,
    seed: int,
    nota_rate: float = 0.0,
) -> list[Episode]:
    """N-way K-shot episodes with `n_query` queries per relation, reproducible by `seed`.

    With `nota_rate` > 0, ``round(nota_rate * n_way * n_query)`` extra queries per episode are
    drawn from relations outside the episode and labelled `NOTA_LABEL` (FewRel 2.0 style)."""
    rels = sorted(data)
    if n_way > len(rels):
        raise ValueError(f"{n_way}-way episodes need {n_way} relations; the data has {len(rels)}")
    small = [r for r in rels if len(data[r]) < k_shot + n_query]
    if small:
        raise ValueError(f"relations with fewer than {k_shot + n_query} instances: {', '.join(small)}")
    n_nota = round(nota_rate * n_way * n_query)
    if n_nota and n_way == len(rels):
        raise ValueError("NOTA queries need more relations than n_way")
    rng = random.Random(seed)
    episodes = []
    for _ in range(n_episodes):
        chosen = rng.sample(rels, n_way)
        support, query, labels = [], [], []
        for r in chosen:
            picks = rng.sample(range(len(data[r])), k_shot + n_query)
            support.append([data[r][i] for i in picks[:k_shot]])
            query.extend(data[r][i] for i in picks[k_shot:])
            labels.extend([r] * n_query)
        others = [r for r in rels if r not in chosen]
        for _ in range(n_nota):
            r = rng.choice(others)
            query.append(data[r][rng.randrange(len(data[r]))])
            labels.append(NOTA_LABEL)
        order = list(range(len(query)))
        rng.shuffle(order)
        episodes.append(Episode(chosen, support, [query[i] for i in order], [labels[i] for i in order]))
    return episodes


# --------------------------------------------------------------------------- labelled sentences
@dataclass
class LabeledSentence:
    """A sentence with its entity mentions and gold relations between mention indices.

    Every ordered pair of distinct mentions that has no gold relation is NOTA, except the pairs
    in `ignored` (related by a relation outside the label set when the reader was asked to
    ignore those): they are neither positives nor negatives."""

    id: str
    text: str
    mentions: list[Span]
    relations: list[tuple[int, int, str]]  # (head mention, tail mention, label), no duplicates
    ignored: set[tuple[int, int]] = field(default_factory=set)
    source: str = ""

    def labels(self) -> dict[tuple[int, int], tuple[str, ...]]:
        """Gold labels per related (head, tail) pair (a pair can carry several)."""
        out: dict[tuple[int, int], list[str]] = defaultdict(list)
        for h, t, r in self.relations:
            out[(h, t)].append(r)
        return {k: tuple(sorted(v)) for k, v in out.items()}

    def pairs(self) -> list[tuple[int, int, tuple[str, ...]]]:
        """Every candidate (head, tail, labels) of the sentence; labels == () means NOTA."""
        gold = self.labels()
        n = len(self.mentions)
        return [
            (h, t, gold.get((h, t), ()))
            for h in range(n)
            for t in range(n)
            if h != t and (h, t) not in self.ignored
        ]


def _mapped(t: str, type_map: Mapping[str, str] | None) -> str:
    return type_map.get(t, t) if type_map else t


def load_crossre(path: str | Path) -> list[LabeledSentence]:
    """Read a CrossRE file (one JSON sentence per line; `ner` [start, end, type] and `relations`
    [h_start, h_end, t_start, t_end, label, ...] with inclusive token indices).

    Sentence ids are the file's `doc_key` (e.g. ``ai-dev-3``), else ``{domain}-{line}``."""
    path = Path(path)
    domain = path.stem.rsplit("-", 1)[0]
    out = []
    for i, d in read_records(path):
        try:
            text, offsets = tokens_to_text(d["sentence"])
            mentions: list[Span] = []
            index: dict[tuple[int, int], int] = {}
            for start, end, etype in d["ner"]:
                if (start, end) in index:
                    continue  # the same span typed twice: keep the first
                index[(start, end)] = len(mentions)
                mentions.append(_span(text, offsets, start, end, etype))
            rels: list[tuple[int, int, str]] = []
            for r in d["relations"]:
                key = (index[(r[0], r[1])], index[(r[2], r[3])], str(r[4]))
                if key not in rels:
                    rels.append(key)
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise UsageError(f"{path}:{i}: malformed CrossRE sentence ({exc!r})") from None
        sid = str(d.get("doc_key") or f"{domain}-{i - 1}")
        out.append(LabeledSentence(sid, text, mentions, rels, source=f"crossre/{domain}"))
    return out


def to_documents(sentences: Iterable[LabeledSentence], type_map: Mapping[str, str] | None = None) -> list[Document]:
    """One `Document` per sentence with its gold mentions as user-given entities (no NER needed)."""
    return [
        Document(s.id, s.text, [EntitySpan(m.start, m.end, _mapped(m.type, type_map)) for m in s.mentions])
        for s in sentences
    ]


def gold_records(sentences: Iterable[LabeledSentence], type_map: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """Gold triples in the output record shape of DESIGN.md §1 (doc = sentence id, sentence 0)."""

    def mention(m: Span) -> dict[str, Any]:
        return {"text": m.text, "type": _mapped(m.type, type_map), "start": m.start, "end": m.end}

    out = []
    for s in sentences:
        for h, t, r in s.relations:
            out.append({
                "doc": s.id,
                "sentence": 0,
                "relation": r,
                "head": mention(s.mentions[h]),
                "tail": mention(s.mentions[t]),
                "method": "gold",
                "evidence": s.text,
            })
    return out


# --------------------------------------------------------------------------- Re-DocRED
def load_redocred_sentences(
    path: str | Path,
    top_relations: int | None = 20,
    other_relations: Literal["nota", "ignore"] = "nota",
) -> list[LabeledSentence]:
    """A sentence-level view of Re-DocRED; labels are Wikidata pids (names: `relation_names`).

    Rules:
    * each sentence with mentions of at least two distinct entities becomes one LabeledSentence
      (id ``redocred-{doc}-{sentence}``); an entity mentioned several times in the sentence is
      represented by its first mention there, so coreferent mentions never form pairs;
    * a document-level triple (h, r, t) is kept in *every* sentence that mentions both h and t,
      between those representative mentions (it is not restricted to the evidence sentences:
      3952 of Re-DocRED's revised triples have no evidence, and leaving a true pair out of a
      sentence would turn it into a false NOTA);
    * only the `top_relations` most frequent pids (counted on these sentence-level instances,
      ties by pid; None keeps all) are labels; a pair whose only relations are outside them is
      NOTA (`other_relations="nota"`, the realistic setting) or left out of evaluation
      (`"ignore"`: listed in `LabeledSentence.ignored`)."""
    docs = _read_json(path)
    if not isinstance(docs, list):
        raise UsageError(f"{path}: expected a list of documents")
    staged: list[tuple[LabeledSentence, list[tuple[int, int, str]]]] = []
    counts: Counter[str] = Counter()
    for di, d in enumerate(docs):
        try:
            sents = d["sents"]
            # entity -> sentence -> first mention there
            first: dict[int, dict[int, dict[str, Any]]] = defaultdict(dict)
            for ei, ent in enumerate(d["vertexSet"]):
                for m in sorted(ent, key=lambda m: (m["sent_id"], m["pos"][0])):
                    first[ei].setdefault(m["sent_id"], m)
            by_sent: dict[int, list[int]] = defaultdict(list)
            for ei, ms in first.items():
                for sid in ms:
                    by_sent[sid].append(ei)
            for sid in sorted(by_sent):
                ents = sorted(by_sent[sid], key=lambda e: (first[e][sid]["pos"][0], e))
                if len(ents) < 2:
                    continue
                text, offsets = tokens_to_text(sents[sid])
                mentions = []
                for e in ents:
                    m = first[e][sid]
                    mentions.append(_span(text, offsets, m["pos"][0], m["pos"][1] - 1, m["type"]))
                pos = {e: i for i, e in enumerate(ents)}
                rels = []
                for lab in d.get("labels", []):
                    h, t = lab["h"], lab["t"]
                    if h in pos and t in pos and h != t:
                        key = (pos[h], pos[t], str(lab["r"]))
                        if key not in rels:
                            rels.append(key)
                            counts[key[2]] += 1
                s = LabeledSentence(f"redocred-{di}-{sid}", text, mentions, [], source="redocred")
                staged.append((s, rels))
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise UsageError(f"{path}: document {di}: malformed Re-DocRED document ({exc!r})") from None
    keep = set(redocred_top_pids_from_counts(counts, top_relations))
    out = []
    for s, rels in staged:
        s.relations = [r for r in rels if r[2] in keep]
        if other_relations == "ignore":
            kept_pairs = {(h, t) for h, t, _ in s.relations}
            s.ignored = {(h, t) for h, t, _ in rels if (h, t) not in kept_pairs}
        out.append(s)
    return out


def redocred_top_pids_from_counts(counts: Mapping[str, int], top: int | None) -> list[str]:
    """The `top` most frequent pids (ties broken by pid); all of them when `top` is None."""
    ranked = sorted(counts, key=lambda p: (-counts[p], p))
    return ranked if top is None else ranked[:top]


def relation_counts(sentences: Iterable[LabeledSentence]) -> Counter[str]:
    """How many (sentence, pair, label) instances each label has."""
    return Counter(r for s in sentences for _, _, r in s.relations)


def redocred_descriptions(pid2name_path: str | Path, pids: Iterable[str] | None = None) -> dict[str, str]:
    """``"name: description"`` per pid from pid2name.json (date properties from a built-in table),
    the description cut to its first sentence: the rest is Wikidata editing advice."""
    table = _pid_table(pid2name_path)
    wanted = list(pids) if pids is not None else list(table)
    out = {}
    for p in wanted:
        if p not in table:
            out[p] = p
            continue
        name, desc = table[p]
        desc = re.split(r"\.\s+(?=[A-Z])", desc)[0].strip().rstrip(".")
        out[p] = f"{name}: {desc}" if desc and desc != "No description defined" else name
    return out


# --------------------------------------------------------------------------- K-shot schemas
def _nota_entities(s: LabeledSentence, head: int, tail: int) -> list[int]:
    """The mentions an example lists as its sentence's other entities: those whose pairs with the
    head, the tail and each other carry no gold relation (in either direction), so that training
    them as NOTA agrees with the data; mentions overlapping a listed one are left out."""
    related = {(a, b) for a, b, _ in s.relations} | {(b, a) for a, b, _ in s.relations} | s.ignored
    keep = [head, tail]
    for j, m in enumerate(s.mentions):
        if j in keep or any(m.overlaps(s.mentions[k]) for k in keep):
            continue
        if any((j, k) in related or (k, j) in related for k in keep):
            continue
        keep.append(j)
    return keep[2:]



def kshot_schema(
    sentences: Sequence[LabeledSentence],
    k: int,
    seed: int,
    relation_descriptions: Mapping[str, str],
    type_map: Mapping[str, str] | None = None,
    templates: Mapping[str, str] | None = None,
    name: str = "kshot",
    types: str = "examples",
    example_entities: bool = False,
) -> Schema:
    """An in-memory Schema with at most `k` examples per relation sampled from `sentences`.

    * entity types: every dataset type maps through `type_map` (identity when None) to a schema
      type, whose NER labels are the dataset types mapped to it;
    * relations: those of `relation_descriptions` (in its order), then any other label seen in
      the data; head/tail types: with ``types="examples"`` (the honest K-shot protocol) the
      (mapped) types of the relation's K sampled examples, all a user with K examples knows;
      with ``types="split"`` (the earlier, optimistic protocol) those observed in *all* of
      `sentences`. Every schema type when the relation never occurs (such a relation has no
      examples; a warning says so);
    * `example_entities`: each example lists the other gold mentions of its sentence as its
      `entities:` (what a user can write in the schema; training then makes every unlabelled
      pair among them a NOTA negative), leaving out mentions in a gold pair with a listed one, so
      no pair the data relates trains as NOTA; when the example's pair read backwards holds a
      relation of the schema, that is one more example (`source="kshot-reverse"`), as a user
      annotating the sentence would write it. Off: the schema carries head and tail only;
    * sampling: per relation with ``random.Random(f"{seed}/{relation}")`` over its instances in
      data order, so a relation's examples do not depend on which other relations exist."""
    if k < 0:
        raise ValueError("k must be >= 0")
    label_map: dict[str, set[str]] = defaultdict(set)
    for s in sentences:
        for m in s.mentions:
            label_map[_mapped(m.type, type_map)].add(m.type)
    if type_map:
        for dataset_type, schema_type in type_map.items():
            label_map[schema_type].add(dataset_type)
    entity_types = {t: tuple(sorted(labels)) for t, labels in sorted(label_map.items())}

    instances: dict[str, list[tuple[LabeledSentence, Span, Span]]] = defaultdict(list)
    for s in sentences:
        for h, t, r in s.relations:
            instances[r].append((s, s.mentions[h], s.mentions[t]))
    names = list(relation_descriptions) + sorted(r for r in instances if r not in relation_descriptions)

    relations: dict[str, Relation] = {}
    warnings: list[str] = []
    all_types = tuple(entity_types)
    reverse: list[tuple[str, LabeledSentence, Span, Span]] = []
    if types not in ("examples", "split"):
        raise ValueError(f"types must be 'examples' or 'split', not {types!r}")
    for r in names:
        found = instances.get(r, [])
        picks = random.Random(f"{seed}/{r}").sample(found, min(k, len(found)))
        typed_from = picks if types == "examples" and picks else found
        if found:
            head_types = tuple(sorted({_mapped(h.type, type_map) for _, h, _ in typed_from}))
            tail_types = tuple(sorted({_mapped(t.type, type_map) for _, _, t in typed_from}))
        else:
            head_types = tail_types = all_types
            warnings.append(f"relations.{r}: no training instance; description only, all types allowed")
        rel = Relation(
            r,
            relation_descriptions.get(r, ""),
            head_types,
            tail_types,
            (templates or {}).get(r),
        )
        for s, h, t in picks:
            entities = None
            if example_entities:
                hi, ti = s.mentions.index(h), s.mentions.index(t)
                entities = tuple(Span(m.start, m.end, _mapped(m.type, type_map), m.text)
                                 for m in (s.mentions[j] for j in _nota_entities(s, hi, ti)))
                # the pair read backwards holds a relation here (an inverse or symmetric one): a user
                # who lists the sentence's entities labels it too, or training would call it NOTA
                reverse.extend((lab, s, t, h) for a, b, lab in s.relations if (a, b) == (ti, hi))
            rel.examples.append(
                Example(
                    r,
                    s.text,
                    Span(h.start, h.end, _mapped(h.type, type_map), h.text),
                    Span(t.start, t.end, _mapped(t.type, type_map), t.text),
                    source="kshot",
                    entities=entities,
                )
            )
        relations[r] = rel
    for lab, s, h, t in reverse:
        rel = relations.get(lab)
        if rel is not None and not any(e.text == s.text and (e.head.start, e.tail.start) == (h.start, t.start)
                                       for e in rel.examples):
            rel.examples.append(Example(lab, s.text, Span(h.start, h.end, _mapped(h.type, type_map), h.text),
                                        Span(t.start, t.end, _mapped(t.type, type_map), t.text),
                                        source="kshot-reverse", entities=()))
    return Schema(
        name=name,
        language="en",
        encoder=None,
        entity_types=entity_types,
        relations=relations,
        description=f"{k}-shot schema sampled with seed {seed}",
        warnings=warnings,
    )


# --------------------------------------------------------------------------- descriptions
# CrossRE's 17 labels, read off the training data (the head comes first in each relation).
CROSSRE_DESCRIPTIONS: dict[str, str] = {
    "part-of": "the head is a part, member, component or subfield of the tail (a task within a field, a musician in a band, a planet of a system)",
    "physical": "the head is physically located in, based in, or near the tail (a place, country or institution)",
    "usage": "the head uses, applies or plays the tail (a method, tool, metric or instrument)",
    "role": "the head has a role in or for the tail: works for, belongs to, leads, represents, acts in or supports it",
    "social": "the head has a personal or social relationship with the tail (family, friendship, admiration between people or groups)",
    "general-affiliation": "the head is affiliated with the tail: its genre, political orientation, nationality, religion or category",
    "compare": "the head is compared with or contrasted to the tail",
    "temporal": "the head is tied to the tail in time: it takes part in, is awarded at, or happens during the tail (an election, event or edition)",
    "artifact": "the head is an artifact (a book, album, song, product or compound) created, produced or owned by the tail",
    "origin": "the head originates from the tail: it was founded, invented, discovered, started or portrayed by the tail, or comes from it",
    "topic": "the head (a work, project or event) is about or deals with the tail",
    "opposite": "the head opposes, runs against or is in conflict with the tail",
    "cause-effect": "the head causes, produces or leads to the tail",
    "win-defeat": "the head won the tail (an award, election or contest) or defeated the tail (an opponent)",
    "type-of": "the head is a kind, subtype or instance of the tail",
    "named": "the head is a name, alias, abbreviation or title of the tail; both refer to the same thing",
    "related-to": "the head is related to the tail in a way none of the more specific relations describes (e.g. a researcher and their field)",
}

CROSSRE_TEMPLATES: dict[str, str] = {
    "part-of": "{head} is part of {tail}",
    "physical": "{head} is located in {tail}",
    "usage": "{head} uses {tail}",
    "role": "{head} has a role in {tail}",
    "social": "{head} has a personal relationship with {tail}",
    "general-affiliation": "{head} is affiliated with {tail}",
    "compare": "{head} is compared with {tail}",
    "temporal": "{head} took part in or happened during {tail}",
    "artifact": "{head} was created by {tail}",
    "origin": "{head} originates from {tail}",
    "topic": "{head} is about {tail}",
    "opposite": "{head} is opposed to {tail}",
    "cause-effect": "{head} causes {tail}",
    "win-defeat": "{head} won or defeated {tail}",
    "type-of": "{head} is a type of {tail}",
    "named": "{head} is another name for {tail}",
    "related-to": "{head} is related to {tail}",
}

# The 20 most frequent pids of the sentence-level view of dev_revised.json (see
# `load_redocred_sentences`), most frequent first; a test recomputes this list.
REDOCRED_TOP20: tuple[str, ...] = (
    "P131", "P17", "P27", "P150", "P800", "P527", "P361", "P577", "P175", "P569",
    "P463", "P571", "P3373", "P570", "P1344", "P710", "P19", "P1001", "P495", "P26",
)

# Templates for the top-20 pids and some further frequent ones (the head is Wikidata's subject).
REDOCRED_TEMPLATES: dict[str, str] = {
    "P131": "{head} is located in the administrative region {tail}",
    "P17": "{head} is in the country {tail}",
    "P27": "{head} is a citizen of {tail}",
    "P150": "{head} contains the administrative region {tail}",
    "P800": "{tail} is a notable work of {head}",
    "P527": "{head} has {tail} as a part",
    "P361": "{head} is part of {tail}",
    "P577": "{head} was published or released in {tail}",
    "P175": "{head} was performed by {tail}",
    "P569": "{head} was born on {tail}",
    "P463": "{head} is a member of {tail}",
    "P571": "{head} was founded or created in {tail}",
    "P570": "{head} died on {tail}",
    "P3373": "{head} is a sibling of {tail}",
    "P1344": "{head} participated in {tail}",
    "P710": "{tail} participated in {head}",
    "P495": "{head} comes from the country {tail}",
    "P19": "{head} was born in {tail}",
    "P1001": "{head} has authority over the jurisdiction {tail}",
    "P26": "{head} is married to {tail}",
    "P206": "{head} is located in or next to the body of water {tail}",
    "P127": "{head} is owned by {tail}",
    "P161": "{tail} is a cast member of {head}",
    "P264": "{head} is signed to the record label {tail}",
    "P30": "{head} is on the continent {tail}",
    "P1441": "{head} appears in the work {tail}",
    "P607": "{head} took part in the conflict {tail}",
    "P580": "{head} started in {tail}",
    "P582": "{head} ended in {tail}",
    "P585": "{head} took place in {tail}",
    "P576": "{head} was dissolved or abolished in {tail}",
}
