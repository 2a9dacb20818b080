"""The entity recognizer: sentences and schema-typed mentions for documents, through a real Stanza pipeline.

Two routes:

* **NER**: Stanza's tokenizer and NER tagger (downloaded models, or a custom
  `ner_model_path` with the spaCy-backed tokenizer). NER labels map to schema
  types through the schema; mentions whose label maps to no type are dropped.
* **Given entities** (JSONL `entities`): Stanza only splits sentences, with the
  spaCy-backed tokenizer that needs no downloaded model, so this works offline
  (see `given.py`).

Documents go through Stanza in bulk batches (many documents per call) so the
tagger batches sentences across documents and memory stays bounded.
Stanza is imported lazily: `fsre --help` must not pay for it.
"""

from __future__ import annotations

import json

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Literal

from fsre_cli.documents import Document, Mention, Sentence
from fsre_cli.entities import mention_cache
from fsre_cli.entities.given import given_entity_problem, given_sentences
from fsre_cli.entities.models import (
    ENV_STANZA_DIR,
    missing_models_message,
    ner_model_files,
    resolve_stanza_dir,
    write_minimal_resources,
)
from fsre_cli.errors import BadEntityError, FsreError, ModelMissingError, UsageError
from fsre_cli.schema import Schema, Span

if TYPE_CHECKING:  # pragma: no cover
    import stanza

EntitiesMode = Literal["auto", "given", "stanza"]
ENTITY_MODES: tuple[str, ...] = ("auto", "given", "stanza")

# spaCy refuses texts over 1M characters by default; tokenizing without a parser needs little memory.
_SPACY_MAX_LENGTH = 50_000_000

_Tok = tuple[str, int, int]  # token text, start, end (offsets into the original text)


@dataclass
class _Pipe:
    """A loaded Stanza pipeline and whether its tokenizer is the spaCy variant (needs clean-up)."""

    nlp: "stanza.Pipeline"
    spacy: bool


class EntityRecognizer:
    """Sentences and schema-typed entity mentions for documents, through Stanza.

    Pipelines load lazily, at most once per instance: a run whose documents all
    carry their own entities never loads the NER model.
    """

    def __init__(
        self,
        schema: Schema,
        *,
        lang: str | None = None,
        stanza_dir: str | None = None,
        ner_model_path: str | os.PathLike[str] | None = None,
        entities: EntitiesMode = "auto",
        batch_size: int = 32,
        use_gpu: bool = False,
        max_batch_chars: int = 500_000,
        mention_cache: str | os.PathLike[str] | None = None,
    ) -> None:
        if entities not in ENTITY_MODES:
            raise UsageError(f"entities must be one of {', '.join(ENTITY_MODES)}, not {entities!r}")
        if batch_size < 1 or max_batch_chars < 1:
            raise UsageError("batch size and max batch characters must be at least 1")
        self.schema = schema
        self.lang = lang or schema.language or "en"
        # an explicit directory (argument or $FSRE_STANZA_DIR) is repeated in the download hint
        self._explicit_dir = os.fspath(stanza_dir) if stanza_dir else (os.environ.get(ENV_STANZA_DIR) or None)
        self.ner_model_path = os.fspath(ner_model_path) if ner_model_path else None
        self.entities = entities
        self.batch_size = batch_size
        self.max_batch_chars = max_batch_chars
        self.use_gpu = use_gpu
        # where `example_mentions` keeps its results (keyed by NER model files, labels and texts);
        # None: always run NER on the examples
        self.mention_cache = Path(mention_cache) if mention_cache else None
        self._splitter: _Pipe | None = None
        self._ner: _Pipe | None = None
        self.holding = 0  # documents of the current batch processed but not yet handed on

    @property
    def stanza_dir(self) -> str:
        """The Stanza model directory this recognizer loads from (argument, $FSRE_STANZA_DIR, Stanza's default)."""
        return resolve_stanza_dir(self._explicit_dir)

    @property
    def ner_loaded(self) -> bool:
        """Whether the NER pipeline has been loaded (for tests and verbose reporting)."""
        return self._ner is not None

    # ------------------------------------------------------------------ public
    def preload(self) -> None:
        """Load the NER pipeline now, so a missing model is reported before minutes of work."""
        if self.entities != "given":
            self._get_ner()

    def example_mentions(self, texts: Iterable[str]) -> dict[str, list[Span]] | None:
        """Schema-typed NER mentions of the example sentences, so that training draws its NOTA pairs
        from the entities extraction will pair up. None when this recognizer never runs NER
        (entities=given) or no NER model is installed: training then guesses name-like spans.

        Every extract needs them (they are part of the model's cache key), so with `mention_cache`
        they are kept on disk: a repeated run neither loads the NER model for them nor tags them."""
        if self.entities == "given":
            return None
        unique = list(dict.fromkeys(texts))
        if not unique:
            return None
        cache_file = self._mention_cache_file(unique)
        if cache_file is not None:
            cached = mention_cache.read_mentions(cache_file, unique)
            if cached is not None:
                return cached
        try:
            self._get_ner()
        except ModelMissingError:
            return None
        docs = [Document(id=f"example-{i}", text=t) for i, t in enumerate(unique)]
        out: dict[str, list[Span]] = {}
        for doc, sentences in self.process(docs):
            out[doc.text] = [Span(m.start, m.end, m.type, m.text) for s in sentences for m in s.mentions]
        if cache_file is not None:
            mention_cache.write_mentions(cache_file, out)
        return out

    def _mention_cache_file(self, texts: list[str]) -> Path | None:
        """The cache entry for these texts under this NER model and label mapping; None when
        uncached or when the model files cannot be found (then loading reports what is missing)."""
        if self.mention_cache is None:
            return None
        model = ner_model_files(self.ner_model_path, self.lang, self.stanza_dir)
        if model is None:
            return None
        return mention_cache.entry_path(self.mention_cache, lang=self.lang, model_files=model,
                                        entity_types=self.schema.entity_types, texts=texts)

    def process(self, docs: Iterable[Document], *,
                flush_when: Callable[[], bool] | None = None) -> Iterator[tuple[Document, list[Sentence]]]:
        """Each document with its sentences and mentions, in input order, processed in bulk batches.

        `flush_when` (e.g. `StreamFeed.paused`) ends a batch early when it returns true, so a
        paused stream's documents are processed now instead of after more input.

        A document that cannot be processed (a given entity that `given_entity_problem` rejects:
        `BadEntityError`; no `entities` under entities=given: `UsageError`) raises only after every
        earlier document has been yielded, and before any Stanza work on it. It has been taken
        from `docs`, so calling `process` again on the same iterator goes on after it."""
        for batch in self._batches(docs, flush_when):
            results = self._process_batch(batch)
            for i, item in enumerate(zip(batch, results)):
                self.holding = len(batch) - i - 1
                yield item
        self.holding = 0

    def sentences(self, doc: Document) -> list[Sentence]:
        """Sentences and mentions of one document (convenience; `process` is the bulk path)."""
        return next(iter(self.process([doc])))[1]

    def uses_given(self, doc: Document) -> bool:
        """Whether this document's own entities are used (else Stanza NER finds them)."""
        if self.entities == "stanza":
            return False
        if doc.entities is None:
            if self.entities == "given":
                raise UsageError(
                    f"document {doc.id!r} has no `entities`, but entities=given requires every document "
                    "to carry its own (use --entities auto to let Stanza find them)"
                )
            return False
        return True

    def ner_installed(self) -> bool:
        """Whether the NER model's files are on disk (cheap: nothing is loaded)."""
        return ner_model_files(self.ner_model_path, self.lang, self.stanza_dir) is not None

    def given_problem(self, doc: Document) -> str | None:
        """Why this document's given entities cannot be used (`given_entity_problem`), or why a
        document without any cannot be processed (entities=given), or None, so a caller can skip
        exactly the documents `process` would reject."""
        if self.entities == "stanza":
            return None
        if doc.entities is None:
            if self.entities == "given":
                return (f"document {json.dumps(doc.id, ensure_ascii=False)}: it has no `entities`, which "
                        "--entities given requires of every document")
            return None
        return given_entity_problem(doc, self.schema)

    # ------------------------------------------------------------------ batching
    def _batches(self, docs: Iterable[Document],
                 flush_when: Callable[[], bool] | None = None) -> Iterator[list[Document]]:
        batch: list[Document] = []
        chars = 0
        for doc in docs:
            rejection = self._rejection(doc)
            if rejection is not None:
                if batch:  # the documents before it are good: hand them on first
                    yield batch
                raise rejection
            batch.append(doc)
            chars += len(doc.text)
            if (len(batch) >= self.batch_size or chars >= self.max_batch_chars
                    or (flush_when is not None and flush_when())):
                yield batch
                batch, chars = [], 0
        if batch:
            yield batch

    def _rejection(self, doc: Document) -> FsreError | None:
        """Why this document cannot enter a batch, or None."""
        try:
            self.uses_given(doc)
        except UsageError as exc:
            return exc
        problem = self.given_problem(doc)
        return BadEntityError(doc.id, problem) if problem is not None else None

    def _process_batch(self, batch: list[Document]) -> list[list[Sentence]]:
        given = [self.uses_given(doc) for doc in batch]
        results: list[list[Sentence]] = [[] for _ in batch]
        given_idx = [i for i, own in enumerate(given) if own and batch[i].text.strip()]
        ner_idx = [i for i, own in enumerate(given) if not own and batch[i].text.strip()]
        if given_idx:
            token_sents = self._tokenize(self._get_splitter(), [batch[i].text for i in given_idx])
            for i, sents in zip(given_idx, token_sents):
                results[i] = given_sentences(batch[i], self.schema, [(t[0][1], t[-1][2]) for t in sents])
        if ner_idx:
            for i, sents in zip(ner_idx, self._recognize([batch[i] for i in ner_idx])):
                results[i] = sents
        return results

    # ------------------------------------------------------------------ pipelines
    def _get_splitter(self) -> _Pipe:
        if self._splitter is None:
            if self.lang == "en":
                self._splitter = self._build(spacy=True, processors={"tokenize": "spacy"})
            else:  # the spaCy variant is English-only: use Stanza's own tokenizer for other languages
                self._splitter = self._build(spacy=False, processors="tokenize")
        return self._splitter

    def _get_ner(self) -> _Pipe:
        if self._ner is None:
            if self.ner_model_path:
                if not os.path.isfile(self.ner_model_path):
                    raise ModelMissingError(f"the NER model file {self.ner_model_path} does not exist")
                custom = {
                    "ner_model_path": self.ner_model_path,
                    "ner_forward_charlm_path": None,
                    "ner_backward_charlm_path": None,
                }
                if self.lang == "en":
                    pipe = self._build(spacy=True, processors={"tokenize": "spacy", "ner": "default"}, **custom)
                else:
                    pipe = self._build(spacy=False, processors="tokenize,ner", **custom)
            else:
                pipe = self._build(spacy=False, processors="tokenize,ner")
            if "ner" not in pipe.nlp.processors:
                raise ModelMissingError(
                    f"Stanza has no NER model for language '{self.lang}' in {self.stanza_dir}: give each "
                    "document its own `entities` (JSONL input) or a trained Stanza NER model file"
                )
            self._ner = pipe
        return self._ner

    def _build(self, *, spacy: bool, processors: Any, **kwargs: Any) -> _Pipe:
        """Construct a Stanza pipeline with no implicit download, turning missing models into one clear error."""
        import stanza

        common = dict(
            # Stanza's own log lines would only repeat, less clearly, the errors raised below
            lang=self.lang, processors=processors, download_method=None, logging_level="CRITICAL",
            use_gpu=self.use_gpu, **kwargs,
        )
        if spacy:
            # the minimal resources.json is read only while the pipeline is built
            with tempfile.TemporaryDirectory(prefix="fsre-stanza-") as tmp:
                write_minimal_resources(tmp)
                nlp = self._construct(stanza, dir=tmp, **common)
            _raise_spacy_limit(nlp)
        else:
            directory = self.stanza_dir
            if not os.path.isfile(os.path.join(directory, "resources.json")):
                raise ModelMissingError(self._missing(f"no resources.json in {directory}"))
            nlp = self._construct(stanza, dir=directory, **common)
        return _Pipe(nlp, spacy)

    def _construct(self, stanza_mod: Any, **kwargs: Any) -> "stanza.Pipeline":
        from stanza.pipeline.core import LanguageNotDownloadedError, UnsupportedProcessorError
        from stanza.resources.common import ResourcesFileNotFoundError

        try:
            return stanza_mod.Pipeline(**kwargs)
        except ResourcesFileNotFoundError as exc:
            raise ModelMissingError(self._missing(f"no resources.json at {exc.resources_filepath}")) from None
        except LanguageNotDownloadedError as exc:
            raise ModelMissingError(self._missing(f"{exc.lang_dir} does not exist")) from None
        except UnsupportedProcessorError as exc:
            raise ModelMissingError(
                f"Stanza has no {exc.processor} model for language '{exc.lang}': give each document its own "
                "`entities` (JSONL input) or a trained Stanza NER model file"
            ) from None
        except FileNotFoundError as exc:
            what = exc.filename or str(exc).split("  ")[0]
            raise ModelMissingError(self._missing(f"missing {what}")) from None
        except ValueError as exc:
            if "No processors to load" in str(exc):
                raise UsageError(f"Stanza has no models for language '{self.lang}'") from None
            raise
        except Exception as exc:
            if _is_network_error(exc):
                raise ModelMissingError(self._missing(f"a download was attempted and failed: {exc}")) from None
            raise

    def _missing(self, detail: str) -> str:
        return missing_models_message(self.lang, self.stanza_dir, detail, self._explicit_dir)

    # ------------------------------------------------------------------ tokens and sentences
    def _tokenize(self, pipe: _Pipe, texts: list[str]) -> list[list[list[_Tok]]]:
        """Sentences of tokens with offsets into each text; whitespace tokens (spaCy's) are dropped."""
        from stanza.models.common.doc import Document as StanzaDocument

        processed = pipe.nlp([StanzaDocument([], text=t) for t in texts], processors="tokenize")
        return [_token_sentences(sdoc, text, fix_boundaries=pipe.spacy) for sdoc, text in zip(processed, texts)]

    def _recognize(self, docs: list[Document]) -> list[list[Sentence]]:
        """Run NER over the documents in one bulk call and build sentences with mapped mentions."""
        from stanza.models.common.doc import Document as StanzaDocument

        pipe = self._get_ner()
        texts = [d.text for d in docs]
        if pipe.spacy:
            # tokenize, drop spaCy's whitespace tokens (they break entities like "Alice  Smith"),
            # then tag the cleaned sentences; offsets stay those of the original text
            token_sents = self._tokenize(pipe, texts)
            sdocs = [_stanza_document(StanzaDocument, sents, text) for sents, text in zip(token_sents, texts)]
            nonempty = [i for i, s in enumerate(sdocs) if s.sentences]
            tagged = pipe.nlp([sdocs[i] for i in nonempty], processors="ner") if nonempty else []
            for i, sdoc in zip(nonempty, tagged):
                sdocs[i] = sdoc
        else:
            sdocs = pipe.nlp([StanzaDocument([], text=t) for t in texts])
        return [self._ner_sentences(doc, sdoc) for doc, sdoc in zip(docs, sdocs)]

    def _ner_sentences(self, doc: Document, sdoc: Any) -> list[Sentence]:
        sentences: list[Sentence] = []
        text = doc.text
        for ssent in sdoc.sentences:
            toks = _tokens_of(ssent, text)
            if not toks:
                continue
            start, end = toks[0][1], toks[-1][2]
            mentions: list[Mention] = []
            for ent in ssent.ents:
                schema_type = self.schema.type_for_label(ent.type)
                if schema_type is None:
                    continue
                span = _trim(text, ent.start_char, ent.end_char)
                if span is None:
                    continue
                s, e = span
                mentions.append(Mention(text=text[s:e], start=s, end=e, type=schema_type, label=ent.type))
                start, end = min(start, s), max(end, e)
            mentions.sort(key=lambda m: (m.start, m.end))
            sentences.append(Sentence(doc.id, len(sentences), start, end, text[start:end], mentions))
        return sentences


# --------------------------------------------------------------------------- helpers
def _raise_spacy_limit(nlp: Any) -> None:
    """Let the spaCy tokenizer take long documents (its default refuses over 1M characters)."""
    variant = getattr(nlp.processors.get("tokenize"), "_variant", None)
    spacy_nlp = getattr(variant, "nlp", None)
    if spacy_nlp is not None:
        spacy_nlp.max_length = max(spacy_nlp.max_length, _SPACY_MAX_LENGTH)


def _is_network_error(exc: BaseException) -> bool:
    try:
        import requests
    except ImportError:  # pragma: no cover
        return False
    return isinstance(exc, requests.exceptions.RequestException)


def _tokens_of(ssent: Any, text: str) -> list[_Tok]:
    out = []
    for tok in ssent.tokens:
        if tok.start_char is None or tok.end_char is None or not tok.text.strip():
            continue
        if not text[tok.start_char : tok.end_char].strip():
            continue
        out.append((tok.text, tok.start_char, tok.end_char))
    return out


def _token_sentences(sdoc: Any, text: str, *, fix_boundaries: bool) -> list[list[_Tok]]:
    sents = [toks for toks in (_tokens_of(s, text) for s in sdoc.sentences) if toks]
    if fix_boundaries:
        sents = [piece for toks in sents for piece in _split_paragraphs(toks, text)]
        _move_opening_punctuation(sents, text)
    return [s for s in sents if s]


_PARAGRAPH_BREAK = re.compile(r"\n[^\S\n]*\n")


def _split_paragraphs(toks: list[_Tok], text: str) -> list[list[_Tok]]:
    """Split at blank lines: spaCy's sentencizer ignores them, but headings and list items end there."""
    pieces: list[list[_Tok]] = [[toks[0]]]
    for prev, tok in zip(toks, toks[1:]):
        if _PARAGRAPH_BREAK.search(text, prev[2], tok[1]):
            pieces.append([])
        pieces[-1].append(tok)
    return pieces


_OPENING = set("“‘«„([{")


def _move_opening_punctuation(sents: list[list[_Tok]], text: str) -> None:
    """Move sentence-final opening quotes/brackets to the sentence they open.

    spaCy's sentencizer attaches every punctuation token after a full stop to the
    sentence it ends, so `He left. “Wei Chen” arrived.` yields `He left. “`. A
    trailing punctuation token that is glued to the next token but not to the
    previous one (or is an opening mark) belongs to the next sentence.
    """
    for i in range(len(sents) - 1):
        cur, nxt = sents[i], sents[i + 1]
        moved: list[_Tok] = []
        while len(cur) > 1:
            tok = cur[-1]
            follower = moved[0] if moved else nxt[0]
            glued_after = tok[2] == follower[1]
            glued_before = cur[-2][2] == tok[1]
            punct = not any(ch.isalnum() for ch in tok[0])
            if punct and (tok[0] in _OPENING or (glued_after and not glued_before)):
                moved.insert(0, cur.pop())
            else:
                break
        if moved:
            sents[i + 1] = moved + nxt


def _stanza_document(cls: Any, sents: list[list[_Tok]], text: str) -> Any:
    """A pre-tokenized Stanza document whose tokens keep their offsets into `text`."""
    return cls(
        [[{"text": t, "misc": f"start_char={s}|end_char={e}"} for t, s, e in sent] for sent in sents],
        text=text,
    )


def _trim(text: str, start: int | None, end: int | None) -> tuple[int, int] | None:
    """Offsets without surrounding whitespace, or None when the span is unusable."""
    if start is None or end is None or not 0 <= start < end <= len(text):
        return None
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if start < end else None
