"""The TKRE encoder: real MiniLM weights, real (tiny) training on one thread."""

from __future__ import annotations

import dataclasses
import statistics
from pathlib import Path

import pytest
import torch

from fsre_cli.documents import Candidate, Mention, Sentence
from fsre_cli.schema import parse_schema
from fsre_cli.tkre.artifact import check_compatible, load_artifact, save_artifact
from fsre_cli.tkre.data import build_instances, split_heldout
from fsre_cli.tkre.encoder import load_masked_lm, load_tokenizer, resolve_encoder
from fsre_cli.tkre.markers import ENTITY, OTHER, RELATION, SPECIAL, PairSpec, mark_pair
from fsre_cli.tkre.pretrain import MASK_PROBS, PretrainItem, mslm_mask, pretrain
from fsre_cli.scorers.prototype import PairEmbedder, PrototypeScorer
from fsre_cli.scorers.tkre import TkreScorer
from fsre_cli.tkre.calibration import calibrate_threshold
from fsre_cli.review import Decision
from fsre_cli.tkre.config import TrainConfig, cache_key
from fsre_cli.tkre.train import train_model
from fsre_cli.errors import UsageError

TOY = """\
name: toy
entity_types: {PERSON: [PERSON], ORG: [ORG], PLACE: [GPE, LOC]}
relations:
  founded_by:
    description: the organization was founded by the person
    head: ORG
    tail: PERSON
    examples:
      - {text: "Microsoft was founded by Bill Gates; years later it hired Steve Ballmer.", head: Microsoft, tail: Bill Gates}
      - {text: "Apple was founded by Steve Jobs; in 1997 it hired Jony Ive as a designer.", head: Apple, tail: Steve Jobs}
      - {text: "Google was founded by Larry Page; the company later employed Marissa Mayer.", head: Google, tail: Larry Page}
      - {text: "Amazon was founded by Jeff Bezos.", head: Amazon, tail: Jeff Bezos}
      - {text: "Oracle was founded by Larry Ellison.", head: Oracle, tail: Larry Ellison}
  born_in:
    description: the person was born in the place
    head: PERSON
    tail: PLACE
    examples:
      - {text: "Barack Obama was born in Honolulu.", head: Barack Obama, tail: Honolulu}
      - {text: "Marie Curie was born in Warsaw.", head: Marie Curie, tail: Warsaw}
      - {text: "Albert Einstein was born in Ulm.", head: Albert Einstein, tail: Ulm}
      - {text: "Frida Kahlo was born in Coyoacan.", head: Frida Kahlo, tail: Coyoacan}
      - {text: "Pablo Picasso was born in Malaga.", head: Pablo Picasso, tail: Malaga}
"""


@pytest.fixture(scope="module")
def toy_schema():
    return parse_schema(TOY)


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(resolve_encoder(None))


def _candidate(text: str, head: str, head_type: str, tail: str, tail_type: str, schema) -> Candidate:
    sentence = Sentence("d", 0, 0, len(text), text)
    h = Mention(text.index(head), text.index(head) + len(head), head_type, head)
    t = Mention(text.index(tail), text.index(tail) + len(tail), tail_type, tail)
    return Candidate(sentence, h, t, schema.relations_for(head_type, tail_type))


def test_bundled_encoder_is_verified() -> None:
    source = resolve_encoder(None)
    assert source.fingerprint == "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
    assert (Path(source.path) / "model.safetensors").exists()


def test_markers_carry_types_and_survive_truncation(tokenizer) -> None:
    text = "Microsoft was founded by Bill Gates and Paul Allen in 1975."
    pair = PairSpec(text, 0, 9, "ORG", 25, 35, "PERSON")
    marked = mark_pair(pair, tokenizer)
    tokens = tokenizer.convert_ids_to_tokens(marked.input_ids)
    assert tokens[marked.head_index] == "@" and tokens[marked.head_index + 2] == "org"
    assert tokens[marked.tail_index] == "#" and tokens[marked.tail_index + 2] == "person"
    assert [t for t, c in zip(tokens, marked.categories) if c == RELATION] == ["was", "founded", "by"]
    assert marked.categories[0] == SPECIAL and marked.categories[-1] == SPECIAL
    long_text = "Filler words here. " * 60 + text + " More filler after." * 60
    offset = len("Filler words here. " * 60)
    long_pair = PairSpec(long_text, offset, offset + 9, "ORG", offset + 25, offset + 35, "PERSON")
    cut = mark_pair(long_pair, tokenizer, max_length=32)
    tokens = tokenizer.convert_ids_to_tokens(cut.input_ids)
    assert len(cut.input_ids) == 32
    assert tokens[cut.head_index] == "@" and tokens[cut.tail_index] == "#"
    assert "microsoft" in tokens and "gates" in tokens
    reversed_pair = PairSpec(text, 25, 35, "PERSON", 0, 9, "ORG")  # tail before head
    rev = mark_pair(reversed_pair, tokenizer)
    assert rev.tail_index < rev.head_index


def test_span_masking_rates_match_the_method() -> None:
    categories = torch.tensor([[SPECIAL] + [OTHER] * 50 + [ENTITY] * 50 + [RELATION] * 50 + [SPECIAL]] * 200)
    ids = torch.full(categories.shape, 1000)
    masked, labels = mslm_mask(ids, categories, mask_id=103, vocab_size=30522, generator=torch.Generator().manual_seed(0))
    chosen = labels != -100
    for cat, expected in MASK_PROBS.items():
        rate = chosen[categories == cat].float().mean().item()
        assert abs(rate - expected) < 0.02, (cat, rate)
    replaced = masked[chosen] == 103
    assert abs(replaced.float().mean().item() - 0.8) < 0.03  # BERT's 80/10/10 among chosen tokens
    assert bool((labels[chosen] == 1000).all())


@pytest.mark.slow
def test_scl_loss_decreases(toy_schema, tokenizer) -> None:
    torch.manual_seed(0)
    model = load_masked_lm(resolve_encoder(None))
    names = list(toy_schema.relations)
    items = [
        PretrainItem(mark_pair(PairSpec(e.text, e.head.start, e.head.end, e.head.type, e.tail.start, e.tail.end,
                                         e.tail.type), tokenizer), names.index(e.relation))
        for e in toy_schema.examples
    ]
    log = pretrain(model, tokenizer, items, num_relations=2, epochs=6, use_scl=True, batch_size=10, lr=1e-4, seed=0)
    scl = [entry["scl"] for entry in log]
    assert sum(scl[-2:]) / 2 < sum(scl[:2]) / 2


def test_negatives_and_heldout_split(toy_schema) -> None:
    instances = build_instances(toy_schema.examples, toy_schema)
    positives = [i for i in instances if i.label]
    negatives = [i for i in instances if i.label is None]
    assert len(positives) == 10
    texts = {(n.pair.text[n.pair.head_start:n.pair.head_end], n.pair.text[n.pair.tail_start:n.pair.tail_end]) for n in negatives}
    assert ("Microsoft", "Steve Ballmer") in texts  # another pair of the same sentence
    assert ("Barack Obama", "Honolulu") in texts  # the context-swap negative of a born_in example
    for neg in negatives:  # never the labelled pair itself
        assert not any(p.pair == neg.pair for p in positives)
    train, held = split_heldout(instances, 0.2, seed=0)
    assert {i.group for i in train}.isdisjoint({i.group for i in held})
    assert {i.label for i in held if i.label} == {"founded_by", "born_in"}


@pytest.fixture(scope="module")
def trained(toy_schema):
    config = TrainConfig(pretrain=True, mslm_epochs=1, scl_epochs=1, epochs=25, min_epochs=10, heldout=0.2, seed=0)
    return train_model(toy_schema, None, config)


@pytest.mark.slow
def test_nota_is_learned(trained, toy_schema) -> None:
    scorer = TkreScorer(trained.artifact)
    sentence = "Nike was founded by Phil Knight; years later it hired Anna Berg."
    related = _candidate(sentence, "Nike", "ORG", "Phil Knight", "PERSON", toy_schema)
    unrelated = _candidate(sentence, "Nike", "ORG", "Anna Berg", "PERSON", toy_schema)
    born = _candidate("Ada Lovelace was born in London.", "Ada Lovelace", "PERSON", "London", "PLACE", toy_schema)
    p_related, p_unrelated, p_born = scorer.predict([related, unrelated, born])
    assert p_related.relation == "founded_by" and p_born.relation == "born_in"
    assert p_unrelated.best_score < p_related.best_score
    assert p_unrelated.relation is None, p_unrelated
    assert trained.artifact.meta["train"]["positives"] > 0


@pytest.mark.slow
def test_artifact_round_trip(trained, toy_schema, tmp_path: Path) -> None:
    directory = save_artifact(trained.artifact, tmp_path / "model")
    assert (directory / "model.safetensors").exists() and not (directory / "pytorch_model.bin").exists()
    loaded = load_artifact(directory)
    cand = _candidate("Nike was founded by Phil Knight.", "Nike", "ORG", "Phil Knight", "PERSON", toy_schema)
    a = TkreScorer(trained.artifact).predict([cand])[0]
    b = TkreScorer(loaded).predict([cand])[0]
    assert a.best == b.best and abs(a.best_score - b.best_score) < 1e-5
    assert check_compatible(loaded, toy_schema, "m") == []
    # the held-out best-relation scores travel with the model: the cascade calibrates its band on them
    scores = TkreScorer(loaded).heldout_scores
    assert scores == sorted(scores) and 0 < len(scores) <= loaded.meta["heldout"]["instances"]
    assert all(0.0 <= x <= 1.0 for x in scores)
    other = parse_schema(TOY.replace("born_in", "lives_in"))
    with pytest.raises(UsageError, match="trained for schema 'toy' with other relations"):
        check_compatible(loaded, other, "m")
    edited = parse_schema(TOY.replace("Malaga", "Málaga"))
    assert "earlier version" in check_compatible(loaded, edited, "m")[0]


def test_cache_key_follows_what_determines_the_model(toy_schema) -> None:
    fp = resolve_encoder(None).fingerprint
    key = cache_key(toy_schema, None, TrainConfig(), fp)
    assert key == cache_key(parse_schema(TOY), None, TrainConfig(), fp)
    assert key != cache_key(parse_schema(TOY.replace("Malaga", "Seville")), None, TrainConfig(), fp)
    assert key != cache_key(toy_schema, None, TrainConfig(scl=False), fp)
    assert key != cache_key(toy_schema, None, TrainConfig(), "hub:bert-base-uncased")


def test_precision_is_resolved_per_device_and_keyed() -> None:
    from fsre_cli.tkre.encoder import native_bf16, pick_precision

    assert pick_precision("auto", "cpu") == ("bf16" if native_bf16("cpu") else "fp32")
    assert pick_precision("fp32", "cpu") == "fp32" and pick_precision("bf16", "cpu") == "bf16"
    with pytest.raises(UsageError, match="--precision must be one of"):
        pick_precision("fp16", "cpu")
    assert TrainConfig().for_device("cpu").precision == pick_precision("auto", "cpu")


def test_fp32_models_keep_the_keys_they_had_before_the_precision_knob(toy_schema) -> None:
    class BeforeTheKnob(TrainConfig):
        def to_dict(self) -> dict:
            return {k: v for k, v in super().to_dict().items() if k != "precision"}

    fp = resolve_encoder(None).fingerprint
    fp32 = cache_key(toy_schema, None, TrainConfig(precision="fp32"), fp)
    assert fp32 == cache_key(toy_schema, None, BeforeTheKnob(), fp)
    assert fp32 != cache_key(toy_schema, None, TrainConfig(precision="bf16"), fp)


@pytest.mark.slow
def test_both_precisions_train_and_score_in_what_they_trained_in(trained, toy_schema) -> None:
    from fsre_cli.tkre.encoder import native_bf16, pick_precision

    default = pick_precision("auto", "cpu")
    assert trained.artifact.meta["config"]["precision"] == default and TkreScorer(trained.artifact).precision == default
    other = "fp32" if default == "bf16" else "bf16"  # the path the fixture did not take on this machine
    config = TrainConfig(mslm_epochs=1, scl_epochs=1, epochs=3, min_epochs=1, seed=0, precision=other)
    artifact = train_model(toy_schema, None, config).artifact
    assert artifact.meta["config"]["precision"] == other
    scorer = TkreScorer(artifact)
    assert scorer.precision == (other if other == "fp32" or native_bf16("cpu") else "fp32")
    cand = _candidate("Nike was founded by Phil Knight.", "Nike", "ORG", "Phil Knight", "PERSON", toy_schema)
    (pred,) = scorer.predict([cand])
    assert pred.best in toy_schema.relations and 0.0 < pred.best_score <= 1.0


@pytest.mark.slow
def test_prototype_scorer_without_training(toy_schema) -> None:
    scorer = PrototypeScorer(toy_schema, PairEmbedder.load())
    born = _candidate("Ada Lovelace was born in London.", "Ada Lovelace", "PERSON", "London", "PLACE", toy_schema)
    founded = _candidate("Nike was founded by Phil Knight.", "Nike", "ORG", "Phil Knight", "PERSON", toy_schema)
    p_born, p_founded = scorer.predict([born, founded])
    assert p_born.best == "born_in" and p_founded.best == "founded_by"  # types leave one choice each
    assert 0.0 < scorer.threshold < 1.0 and -1.0 <= p_born.best_score <= 1.0


def test_known_mentions_replace_guessed_negatives(toy_schema) -> None:
    from fsre_cli.schema import Span

    ex = toy_schema.relations["founded_by"].examples[0]  # Microsoft ... Bill Gates; ... Steve Ballmer.
    ballmer = ex.text.index("Steve Ballmer")
    mentions = {ex.text: [ex.head, ex.tail, Span(ballmer, ballmer + 13, "PERSON", "Steve Ballmer")]}
    negatives = [i for i in build_instances([ex], toy_schema, mentions=mentions) if i.label is None]
    typed = {(n.pair.text[n.pair.head_start:n.pair.head_end], n.pair.head_type,
              n.pair.text[n.pair.tail_start:n.pair.tail_end], n.pair.tail_type) for n in negatives}
    assert ("Microsoft", "ORG", "Steve Ballmer", "PERSON") in typed  # real types, not guessed ones
    assert not any(h == "Steve Ballmer" and ht == "ORG" for h, ht, _, _ in typed)


@pytest.mark.slow
def test_synthetic_example_verifier(trained, toy_schema) -> None:
    from dataclasses import replace

    from fsre_cli.scorers.tkre import example_verifier

    verify = example_verifier(TkreScorer(trained.artifact))
    good = toy_schema.relations["born_in"].examples[0]
    assert verify(replace(good, text="Grace Hopper was born in New York.",
                          head=replace(good.head, start=0, end=12, text="Grace Hopper"),
                          tail=replace(good.tail, start=25, end=33, text="New York")))
    mislabelled = replace(good, relation="founded_by")  # a birth sentence sold as a founding
    assert not verify(mislabelled)


def test_threshold_is_calibrated_on_heldout_scores_below_any_fixed_grid() -> None:
    # NOTA-heavy softmaxes: relation scores of 0.001-0.02, as a few-shot classifier gives on unseen pairs
    probs = torch.tensor([
        [0.980, 0.020, 0.000],  # gold r1: right
        [0.990, 0.000, 0.010],  # gold r2: right
        [0.992, 0.008, 0.000],  # gold NOTA
        [0.994, 0.000, 0.006],  # gold r1: wrong relation
        [0.999, 0.001, 0.000],  # gold NOTA
    ])
    labels = [1, 2, 0, 1, 0]
    threshold, f1 = calibrate_threshold(probs, labels)
    # admitting the top 2 gives P 1, R 2/3: F1 0.8, the best; the threshold sits between 0.010 and 0.008
    assert f1 == pytest.approx(0.8) and threshold == pytest.approx(0.009)
    # ties: a threshold admits every pair of a tie (the two 0.5 scores stand or fall together)
    tied = torch.tensor([[0.5, 0.5, 0.0], [0.5, 0.5, 0.0], [0.6, 0.0, 0.4]])
    threshold, f1 = calibrate_threshold(tied, [1, 0, 2])
    assert f1 == pytest.approx(0.8) and threshold == pytest.approx(0.2)  # all three: 2 right of 3 predicted
    assert calibrate_threshold(probs, [0, 0, 0, 0, 0]) == (0.5, 0.0)  # no positives: nothing to calibrate on
    assert calibrate_threshold(torch.tensor([[0.9, 0.1, 0.0]]), [2]) == (0.5, 0.0)  # never right


def test_known_mentions_never_turn_a_labelled_pair_into_nota(toy_schema) -> None:
    from fsre_cli.schema import Span
    from fsre_cli.tkre.data import build_instances

    ex = next(e for e in toy_schema.examples if e.relation == "founded_by")
    # an NER mention that overlaps the labelled head with other boundaries, plus a real other entity
    wider = Span(ex.head.start, ex.head.end + 1, ex.head.type, ex.text[ex.head.start:ex.head.end + 1])
    other = next((Span(i, i + 2, "PERSON", ex.text[i:i + 2]) for i in range(len(ex.text) - 2)
                  if not (i < ex.head.end + 1 and ex.head.start < i + 2) and not (i < ex.tail.end and ex.tail.start < i + 2)))
    mentions = {ex.text: [wider, other]}
    instances = [i for i in build_instances([ex], toy_schema, mentions=mentions, negatives_per_example=None)
                 if i.label is None and i.pair.text == ex.text]
    heads = {(i.pair.head_start, i.pair.head_end) for i in instances} | {(i.pair.tail_start, i.pair.tail_end) for i in instances}
    assert (wider.start, wider.end) not in heads  # replaced by the labelled span itself
    # (the context-swap negative reuses the labelled spans, but with types the relation does not allow)
    positive = (ex.head.start, ex.head.end, ex.head.type, ex.tail.start, ex.tail.end, ex.tail.type)
    assert positive not in {(i.pair.head_start, i.pair.head_end, i.pair.head_type,
                             i.pair.tail_start, i.pair.tail_end, i.pair.tail_type) for i in instances}
    fp = resolve_encoder(None).fingerprint
    assert cache_key(toy_schema, None, TrainConfig(), fp) != cache_key(toy_schema, None, TrainConfig(), fp, mentions)


NOTA_TOY = TOY + """\
  ceo_of:
    description: the person leads the organization
    head: PERSON
    tail: ORG
    examples:
      - text: Tim Cook, who runs Apple, met Sundar Pichai of Google in Cupertino.
        head: Tim Cook
        tail: Apple
        entities:
          - {text: Sundar Pichai, type: PERSON}
          - {text: Google, type: ORG}
          - {text: Cupertino, type: PLACE}
    negatives:
      - text: Sofia Marchetti joined from Siemens.
        head: Sofia Marchetti
        tail: Siemens
"""


def _named(instance) -> tuple[str, str]:
    p = instance.pair
    return p.text[p.head_start:p.head_end], p.text[p.tail_start:p.tail_end]


def test_schema_entities_make_every_unlabelled_pair_nota() -> None:
    from fsre_cli.tkre.data import relation_negatives

    schema = parse_schema(NOTA_TOY)
    (ex,) = schema.relations["ceo_of"].examples
    instances = [i for i in build_instances([ex], schema, negatives_per_example=None) if i.pair.text == ex.text]
    real = {"Tim Cook": "PERSON", "Sundar Pichai": "PERSON", "Apple": "ORG", "Google": "ORG", "Cupertino": "PLACE"}
    negatives = {_named(i) for i in instances if i.label is None  # (not the re-typed context-swap negative)
                 and (i.pair.head_type, i.pair.tail_type) == (real[_named(i)[0]], real[_named(i)[1]])}
    # every ordered PERSON/ORG, ORG/PERSON and PERSON/PLACE pair among the four, except the labelled one
    expected = {("Tim Cook", "Google"), ("Sundar Pichai", "Apple"), ("Sundar Pichai", "Google"),
                ("Apple", "Tim Cook"), ("Apple", "Sundar Pichai"), ("Google", "Tim Cook"), ("Google", "Sundar Pichai"),
                ("Tim Cook", "Cupertino"), ("Sundar Pichai", "Cupertino")}
    assert expected <= negatives and ("Tim Cook", "Apple") not in negatives
    typed = {(_named(i), i.pair.head_type, i.pair.tail_type) for i in instances if i.label is None}
    assert (("Sundar Pichai", "Google"), "PERSON", "ORG") in typed  # the schema's types, not guessed ones
    # the reversed pair is kept even when no other in-sentence negative is
    few = [i for i in build_instances([ex], schema, negatives_per_example=0) if i.label is None]
    assert ("Apple", "Tim Cook") in {_named(i) for i in few}
    (neg,) = relation_negatives(schema.negatives)
    assert neg.label is None and neg.not_relation == "ceo_of" and _named(neg) == ("Sofia Marchetti", "Siemens")


def test_a_negative_lowers_only_the_relation_it_denies() -> None:
    from fsre_cli.tkre.train import pair_loss

    logits = torch.tensor([[0.0, 1.0, 2.0], [1.0, 0.0, 0.0]], requires_grad=True)
    labels, excluded = torch.tensor([0, 1]), torch.tensor([2, -1])
    loss = pair_loss(logits, labels, excluded)
    p = torch.softmax(logits.detach(), dim=-1)
    expected = (-torch.log1p(-p[0, 2]) - torch.log(p[1, 1])) / 2
    assert float(loss.detach()) == pytest.approx(float(expected), rel=1e-5)
    loss.backward()
    grad = logits.grad[0]
    assert grad[2] > 0 and grad[0] < 0 and grad[1] < 0  # R goes down; NOTA and the other relation may rise


def test_decision_rules_and_min_precision() -> None:
    from fsre_cli.tkre.calibration import precision_threshold, relation_thresholds

    scored = [(0.9, True), (0.8, True), (0.7, False), (0.6, True), (0.5, False), (0.4, False)]
    # precision 1 holds down to 0.8; 0.75 holds down to 0.6 (3 of 4)
    assert precision_threshold(scored, 4, 1.0) == pytest.approx(0.75)
    assert precision_threshold(scored, 4, 0.75) == pytest.approx(0.55)
    assert precision_threshold([(0.9, False)], 1, 0.5) is None
    probs = torch.tensor([[0.1, 0.9, 0.0], [0.5, 0.5, 0.0], [0.6, 0.4, 0.0], [0.7, 0.3, 0.0], [0.2, 0.0, 0.8]])
    cuts = relation_thresholds(probs, [1, 1, 0, 0, 2], ["a", "b"], min_positives=2)
    assert set(cuts) == {"a"} and 0.4 < cuts["a"] < 0.5  # "b" has one held-out pair: the global threshold
    artifact = type("A", (), {"relations": ["a", "b"], "threshold": 0.5, "tokenizer": None, "classifier": None,
                              "meta": {"config": {}, "heldout": {"relation_thresholds": {"a": 0.2}, "gold": 4,
                                                                 "scored": [list(x) for x in scored]}}})()
    scorer = TkreScorer(artifact)
    assert scorer.keeps("a", 0.3, 0.6) is False and scorer.keeps("a", 0.5, 0.4) is True
    scorer.decision = "nota"
    assert scorer.keeps("b", 0.3, 0.25) is True and scorer.keeps("b", 0.6, 0.61) is False
    scorer.decision = "relation"
    assert scorer.keeps("a", 0.3, 0.9) is True and scorer.keeps("b", 0.3, 0.0) is False
    assert TkreScorer(artifact, min_precision=1.0).threshold == pytest.approx(0.75)


def test_statements_restate_each_example_and_stay_out_of_the_default_key(toy_schema) -> None:
    from fsre_cli.tkre.data import statement_instances

    (first, *_) = toy_schema.relations["born_in"].examples
    (inst,) = statement_instances([first], toy_schema)
    assert inst.label == "born_in" and inst.group == first.text and inst.pair.text == "Barack Obama born in Honolulu."  # no template: the name read as words
    assert _named(inst) == ("Barack Obama", "Honolulu")
    source = resolve_encoder(None)
    default = cache_key(toy_schema, None, TrainConfig(), source.fingerprint)
    assert cache_key(toy_schema, None, TrainConfig(statements=False), source.fingerprint) == default
    assert cache_key(toy_schema, None, TrainConfig(statements=True), source.fingerprint) != default


def test_annotated_sentences_without_triples_give_nota_pairs(tmp_path) -> None:
    import json

    from fsre_cli.schema import load_schema
    from fsre_cli.tkre.data import annotated_nota

    text = "Ann Lee met Bob Stone at Acme. Acme hired Ann Lee."
    ents = [{"start": text.index(w, o), "end": text.index(w, o) + len(w), "type": t}
            for w, o, t in [("Ann Lee", 0, "PERSON"), ("Bob Stone", 0, "PERSON"), ("Acme", 0, "ORG"),
                            ("Acme", 30, "ORG"), ("Ann Lee", 30, "PERSON")]]
    (tmp_path / "d.jsonl").write_text(json.dumps({"text": text, "entities": ents, "triples": [
        {"relation": "works_for", "head": ents[4], "tail": ents[3]}]}) + "\n")
    (tmp_path / "s.yaml").write_text("name: a\nentity_types: {PERSON: [PERSON], ORG: [ORG]}\ndata: [d.jsonl]\n"
                                     "relations:\n  works_for: {description: works for, head: PERSON, tail: ORG}\n")
    schema = load_schema(tmp_path / "s.yaml")
    nota = annotated_nota(schema.data, schema, seed=0, per_sentence=None)
    assert sorted(_named(i) for i in nota) == [("Ann Lee", "Acme"), ("Bob Stone", "Acme")]  # the first sentence
    assert all(i.label is None for i in nota)
    assert len(annotated_nota(schema.data, schema, seed=0, per_sentence=1)) == 1
    (ex,) = schema.examples  # the second sentence's triple, an example that lists no other entity
    assert (ex.relation, ex.head.text, ex.tail.text, ex.entities) == ("works_for", "Ann Lee", "Acme", ())


def test_a_heldout_fraction_of_zero_holds_out_nothing(toy_schema) -> None:
    instances = build_instances(toy_schema.examples, toy_schema)
    train, held = split_heldout(instances, 0.0, seed=0)
    assert held == [] and train == instances
    assert split_heldout(instances, 0.2, seed=0)[1]  # the default still holds some out


def test_crossfit_folds_put_every_sentence_in_exactly_one_fold_stratified(toy_schema) -> None:
    from fsre_cli.tkre.data import crossfit_folds

    instances = build_instances(toy_schema.examples, toy_schema)
    groups = {i.group for i in instances}
    for k in (2, 3, 5):
        folds = crossfit_folds(instances, k, seed=0)
        assert len(folds) == k and sum(len(f) for f in folds) == len(groups) and set().union(*folds) == groups
        for relation in ("founded_by", "born_in"):  # 5 sentences each: every fold holds one or two
            per_fold = [len({i.group for i in instances if i.label == relation and i.group in f}) for f in folds]
            assert max(per_fold) - min(per_fold) <= 1 and min(per_fold) >= 1
    assert crossfit_folds(instances, 3, seed=0) == crossfit_folds(instances, 3, seed=0)
    assert crossfit_folds(instances, 3, seed=0) != crossfit_folds(instances, 3, seed=1)


def test_crossfit_is_keyed_only_when_on(toy_schema) -> None:
    fp = resolve_encoder(None).fingerprint
    default = cache_key(toy_schema, None, TrainConfig(), fp)
    assert cache_key(toy_schema, None, TrainConfig(crossfit=0), fp) == default
    assert cache_key(toy_schema, None, TrainConfig(crossfit=3), fp) != default
    with pytest.raises(UsageError):
        train_model(toy_schema, None, TrainConfig(crossfit=1))


@pytest.mark.slow
def test_crossfit_scores_every_example_out_of_fold_once_and_trains_the_final_model_on_all(toy_schema) -> None:
    config = TrainConfig(mslm_epochs=1, scl_epochs=1, epochs=4, min_epochs=1, patience=2, seed=0, crossfit=2)
    result = train_model(toy_schema, None, config)
    meta = result.artifact.meta
    instances = build_instances(toy_schema.examples, toy_schema, seed=0,
                                negatives_per_example=None if config.packing != "pair" else 4)
    cf = meta["heldout"]["crossfit"]
    # every instance of every example sentence scored once, by the fold model that did not train on it
    assert cf["folds"] == 2 and sum(cf["fold_instances"]) == cf["scored"] == len(instances)
    assert meta["heldout"]["gold"] == 10  # all ten examples, not a held-out fifth
    assert meta["train"]["instances"] == len(instances)  # the final model trains on every one
    assert len(meta["heldout"]["scored"]) == len(instances)
    stages = [e.get("fold") for e in result.log if e["stage"] == "fine-tune"]
    assert {1, 2} <= set(stages) and stages[-1] is None  # two fold models, then the final one
    final_epochs = sum(1 for s in stages if s is None)
    assert final_epochs == cf["final_epochs"] == int(statistics.median(cf["best_epochs"])) + 1
    assert 0 < meta["threshold"] < 1


def test_statement_rows_start_each_relation_at_its_own_statements(toy_schema, tokenizer) -> None:
    from fsre_cli.tkre.data import statement_instances
    from fsre_cli.tkre.encoder import load_masked_lm
    from fsre_cli.tkre.inference import predict_probs
    from fsre_cli.tkre.packing import encode_pairs
    from fsre_cli.tkre.train import new_classifier

    torch.manual_seed(0)
    mlm = load_masked_lm(resolve_encoder(None))
    config = TrainConfig(statement_rows=True, precision="fp32")
    classifier = new_classifier(mlm, tokenizer, toy_schema, toy_schema.examples, config, "cpu")
    relations = list(toy_schema.relations)
    # before any training, each relation's own statements pick that relation with both relations
    # allowed (types aside): what the schema says is in the rows (a random layer picks by chance)
    statements = statement_instances(toy_schema.examples, toy_schema)
    pairs = encode_pairs([s.pair for s in statements], tokenizer, config.max_length, config.packing)
    allowed = [[True] * (len(relations) + 1) for _ in statements]
    probs = predict_probs(classifier, pairs, allowed, tokenizer.pad_token_id)
    best = [relations[int(p[1:].argmax())] for p in probs]
    assert best == [s.label for s in statements]
    assert float(classifier.head.weight[0].detach().abs().sum()) == 0.0  # NOTA reads nothing; its bias decides
    fp = resolve_encoder(None).fingerprint
    assert cache_key(toy_schema, None, TrainConfig(statement_rows=False), fp) == cache_key(toy_schema, None, TrainConfig(), fp)
    assert cache_key(toy_schema, None, TrainConfig(statement_rows=True), fp) != cache_key(toy_schema, None, TrainConfig(), fp)


def test_reviewed_sentences_can_be_kept_out_of_the_heldout_slice(toy_schema) -> None:
    instances = build_instances(toy_schema.examples, toy_schema)
    held_by_default = {i.group for i in split_heldout(instances, 0.2, seed=0)[1]}
    assert held_by_default
    train, held = split_heldout(instances, 0.2, seed=0, train_only=held_by_default)
    assert held_by_default.isdisjoint({i.group for i in held})  # they only train now
    assert held_by_default <= {i.group for i in train}
    assert len(train) + len(held) == len(instances)
    fp = "encoder"
    default = cache_key(toy_schema, None, TrainConfig(), fp)
    assert cache_key(toy_schema, None, TrainConfig(heldout_review=True), fp) == default
    assert cache_key(toy_schema, None, TrainConfig(heldout_review=False), fp) == default  # no review to keep out
    ex = toy_schema.examples[0]
    decision = Decision("accept", ex.relation, ex.relation, ex.text, ex.head, ex.tail, ("d", 0, 0, 1), {})
    reviewed = dataclasses.replace(toy_schema, review=[decision])
    assert TrainConfig().heldout_review is False  # reviewed sentences only train, unless asked
    assert cache_key(reviewed, None, TrainConfig(heldout_review=True), fp) != cache_key(reviewed, None, TrainConfig(), fp)
