"""Packed passes: one encoder pass per sentence, every pair read off its own mentions' markers."""

from __future__ import annotations

import pytest
import torch

from fsre_cli.errors import UsageError
from fsre_cli.tkre.encoder import load_masked_lm, load_tokenizer, resolve_encoder
from fsre_cli.tkre.inference import predict_probs
from fsre_cli.tkre.markers import HEAD_OPEN, PairSpec, type_words
from fsre_cli.tkre.model import PairClassifier
from fsre_cli.tkre.packing import PACKED_MAX_LENGTH, encode_pairs

TEXT = "Bill Gates founded Microsoft in Albuquerque with Paul Allen."
# three sentences, each an ORG founded by one PERSON and hiring another: NOTA pairs in every one
FOUNDED_SCHEMA = """\
name: founded
entity_types: {PERSON: [PERSON], ORG: [ORG]}
relations:
  founded_by:
    head: ORG
    tail: PERSON
    examples:
      - {text: "Microsoft was founded by Bill Gates; it later hired Steve Ballmer.", head: Microsoft, tail: Bill Gates}
      - {text: "Apple was founded by Steve Jobs; it later hired Tim Cook.", head: Apple, tail: Steve Jobs}
      - {text: "Amazon was founded by Jeff Bezos; it later hired Andy Jassy.", head: Amazon, tail: Jeff Bezos}
"""
MENTIONS = [(0, 10, "PERSON"), (19, 28, "ORG"), (32, 43, "LOC"), (49, 59, "PERSON")]


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(resolve_encoder(None))


def _all_pairs(text: str, mentions) -> list[PairSpec]:
    return [PairSpec(text, *a, *b) for a in mentions for b in mentions if a != b]


def _marked_mention(tokenizer, sequence, index: int) -> str:
    """The words between the opening marker at `index` and its closing marker, type words and
    mention text: "@ * org * microsoft @" -> "org * microsoft"."""
    tokens = tokenizer.convert_ids_to_tokens(sequence.input_ids)
    assert tokens[index] == HEAD_OPEN
    end = tokens.index(HEAD_OPEN, index + 1)
    return tokenizer.convert_tokens_to_string(tokens[index + 2 : end])


def test_a_packed_pass_gives_each_pair_the_markers_of_its_own_mentions(tokenizer) -> None:
    pairs = _all_pairs(TEXT, MENTIONS)
    encoded = encode_pairs(pairs, tokenizer, 128, "sentence")
    assert len(encoded.sequences) == 1 and len(encoded.reads) == len(pairs) == 12
    for pair, (seq, head, tail) in zip(pairs, encoded.reads):
        sequence = encoded.sequences[seq]
        for index, (start, end, etype) in ((head, (pair.head_start, pair.head_end, pair.head_type)),
                                           (tail, (pair.tail_start, pair.tail_end, pair.tail_type))):
            expected = f"{type_words(etype)} * {TEXT[start:end]}".lower()
            assert _marked_mention(tokenizer, sequence, index) == expected
    # per-pair mode: one pass per pair, as before
    assert len(encode_pairs(pairs, tokenizer, 128, "pair").sequences) == 12


def test_overlapping_and_overlong_mentions_fall_back_to_a_pass_per_pair(tokenizer) -> None:
    pairs = _all_pairs(TEXT, MENTIONS)
    nested = PairSpec(TEXT, 0, 4, "PERSON", 19, 28, "ORG")  # "Bill" inside "Bill Gates"
    encoded = encode_pairs(pairs + [nested], tokenizer, 128, "sentence")
    assert len(encoded.sequences) == 2
    seq, head, tail = encoded.reads[-1]
    assert seq == 1 and _marked_mention(tokenizer, encoded.sequences[1], head) == "person * bill"
    assert _marked_mention(tokenizer, encoded.sequences[1], tail) == "org * microsoft"
    # a sentence too long to pack is read pair by pair, each within the per-pair length
    long_text = TEXT + " " + " ".join(["and then nothing happened"] * 60)
    long_pairs = _all_pairs(long_text, MENTIONS)
    long = encode_pairs(long_pairs, tokenizer, 64, "sentence")
    assert len(long.sequences) == len(long_pairs)
    assert all(len(s.input_ids) <= 64 for s in long.sequences) and PACKED_MAX_LENGTH > 64
    with pytest.raises(UsageError, match="--packing must be one of"):
        encode_pairs(pairs, tokenizer, 128, "document")


@pytest.mark.slow
@pytest.mark.parametrize("context", [False, True])
def test_packed_scores_do_not_depend_on_the_other_sentences_scored(tokenizer, context: bool) -> None:
    torch.manual_seed(0)
    source = resolve_encoder(None)
    classifier = PairClassifier(load_masked_lm(source).base_model, 3, context=context).eval()
    other = "Marie Curie was born in Warsaw and worked in Paris for the Sorbonne."
    other_pairs = _all_pairs(other, [(0, 11, "PERSON"), (24, 30, "LOC"), (45, 50, "LOC"), (59, 67, "ORG")])
    pairs = _all_pairs(TEXT, MENTIONS)
    allowed = [[True, True, True, False]] * (len(pairs) + len(other_pairs))
    alone = predict_probs(classifier, encode_pairs(pairs, tokenizer, 128, "sentence"), allowed[: len(pairs)],
                          tokenizer.pad_token_id, batch_size=4)
    mixed = predict_probs(classifier, encode_pairs(other_pairs + pairs, tokenizer, 128, "sentence"), allowed,
                          tokenizer.pad_token_id, batch_size=4)
    assert torch.equal(alone, mixed[len(other_pairs):])
    assert torch.all(alone[:, 3] == 0) and torch.allclose(alone.sum(-1), torch.ones(len(pairs)))
    # one pass gives different pairs different scores (they are read at different markers)
    assert len({round(float(p), 6) for p in alone[:, 1]}) == len(pairs)


def test_balanced_nota_weights_cap_a_crowded_sentence() -> None:
    from fsre_cli.tkre.data import Instance, nota_weights

    text = "A met B, C, D, E, F and G."
    pair = PairSpec(text, 0, 1, "PERSON", 6, 7, "PERSON")
    crowded = [Instance(pair, "met", text)] + [Instance(pair, None, text) for _ in range(30)]
    other = "X met Y."
    quiet = [Instance(PairSpec(other, 0, 1, "P", 6, 7, "P"), "met", other), Instance(pair, None, other)]
    denied = [Instance(pair, None, text, "negative", not_relation="met")]
    weights = nota_weights(crowded + quiet + denied, per_example=4)
    assert weights[0] == 1.0 and weights[-1] == 1.0  # a positive and a "not R" pair
    assert sum(weights[1:31]) == pytest.approx(6.0)  # 30 NOTA pairs weigh what 4 sampled + 2 would
    assert weights[32] == 1.0  # a sentence with few NOTA pairs keeps them whole


def test_two_sentences_with_the_same_words_never_share_a_pass(tokenizer) -> None:
    first = [PairSpec(TEXT, *MENTIONS[0], *MENTIONS[1])]
    second = [PairSpec(TEXT, *MENTIONS[0], *MENTIONS[2]), PairSpec(TEXT, *MENTIONS[2], *MENTIONS[3])]
    merged = encode_pairs(first + second, tokenizer, 128, "sentence")
    apart = encode_pairs(first + second, tokenizer, 128, "sentence", sentences=["doc1", "doc2", "doc2"])
    assert len(merged.sequences) == 1 and len(apart.sequences) == 2
    alone = encode_pairs(first, tokenizer, 128, "sentence")
    assert apart.sequences[apart.reads[0][0]].input_ids == alone.sequences[0].input_ids  # its own mentions only


@pytest.mark.slow
def test_packed_training_with_pair_context_round_trips(tmp_path) -> None:
    from fsre_cli.documents import Candidate, Mention, Sentence
    from fsre_cli.schema import parse_schema
    from fsre_cli.scorers.tkre import TkreScorer
    from fsre_cli.tkre.artifact import load_artifact, save_artifact
    from fsre_cli.tkre.config import TrainConfig
    from fsre_cli.tkre.train import train_model

    schema = parse_schema(FOUNDED_SCHEMA)
    config = TrainConfig(mslm_epochs=1, scl_epochs=1, epochs=2, min_epochs=1, packing="sentence", pair_context=True,
                         nota_balance=True, heldout=0.0, precision="fp32")
    artifact = train_model(schema, None, config).artifact
    assert artifact.classifier.context and artifact.classifier.head.in_features == 3 * 384
    loaded = load_artifact(save_artifact(artifact, tmp_path / "model"))
    assert loaded.classifier.context and loaded.meta["config"]["pair_context"] is True
    text = "Nike was founded by Phil Knight; it later hired Mark Parker."
    sentence = Sentence("d", 0, 0, len(text), text)
    nike = Mention(0, 4, "ORG", "Nike")
    pairs = [Candidate(sentence, nike, Mention(20, 31, "PERSON", "Phil Knight"), ("founded_by",)),
             Candidate(sentence, nike, Mention(49, 60, "PERSON", "Mark Parker"), ("founded_by",))]
    before, after = TkreScorer(artifact).predict(pairs), TkreScorer(loaded).predict(pairs)
    assert [p.best_score for p in before] == pytest.approx([p.best_score for p in after], abs=1e-6)


def test_packed_only_knobs_are_off_in_per_pair_mode_and_out_of_its_keys() -> None:
    from fsre_cli.schema import parse_schema
    from fsre_cli.tkre.config import TrainConfig, cache_key

    schema = parse_schema("name: k\nentity_types: {A: [A]}\nrelations:\n  r: {head: A, tail: A, description: r}\n")
    pair = TrainConfig(packing="pair", nota_balance=True, pair_context=True).for_device("cpu")
    assert not pair.nota_balance and not pair.pair_context
    assert cache_key(schema, None, pair, "fp") == cache_key(schema, None, TrainConfig(packing="pair").for_device("cpu"),
                                                            "fp")
    packed = TrainConfig(packing="sentence", nota_balance=True, pair_context=True).for_device("cpu")
    assert packed.nota_balance and packed.pair_context
    keys = {cache_key(schema, None, TrainConfig(packing="sentence", nota_balance=a, pair_context=b).for_device("cpu"),
                      "fp") for a in (False, True) for b in (False, True)}
    assert len(keys) == 4


def test_packed_batch_sets_the_passes_per_step_and_only_packed_keys() -> None:
    from fsre_cli.schema import parse_schema
    from fsre_cli.tkre.config import TrainConfig, cache_key
    from fsre_cli.tkre.train import train_model

    schema = parse_schema(FOUNDED_SCHEMA)
    def key(**knobs) -> str:
        return cache_key(schema, None, TrainConfig(**knobs).for_device("cpu"), "fp")

    assert key(packing="pair", packed_batch=4) == key(packing="pair")  # unused per pair
    assert key(packing="head", packed_batch=4) != key(packing="head")
    totals = {}
    for rows in (1, 2):
        steps: list[int] = []
        config = TrainConfig(pretrain=False, epochs=1, min_epochs=1, packing="head", packed_batch=rows,
                             heldout=0.0, precision="fp32", seed=0)
        train_model(schema, None, config, on_progress=lambda stage, done, total: steps.append(total))
        totals[rows] = steps[-1]
    # every sentence has three mentions (ORG, two PERSONs) and the ORG heads one pass: an
    # epoch is that many passes, taken one or two per step
    assert totals[1] == 2 * totals[2] or totals[1] == 2 * totals[2] - 1
    assert totals[1] >= 3


def test_early_stopping_counts_epochs_of_16_passes() -> None:
    from fsre_cli.tkre.config import TrainConfig
    from fsre_cli.tkre.train import stopping_epochs

    assert stopping_epochs(TrainConfig(packing="head", packed_batch=16)) == (8, 8)
    assert stopping_epochs(TrainConfig(packing="head", packed_batch=8)) == (4, 4)  # epochs twice as long
    assert stopping_epochs(TrainConfig(packing="head", packed_batch=1)) == (1, 1)
    assert stopping_epochs(TrainConfig(packing="pair", packed_batch=8)) == (8, 8)  # per pair: batch_size rows


def test_training_attention_is_eager_on_a_cpu_and_computes_what_sdpa_does() -> None:
    from fsre_cli.tkre.encoder import training_attention

    encoder = load_masked_lm(resolve_encoder(None)).base_model.eval()
    ids = torch.tensor([[101, 7592, 2088, 2003, 2307, 102], [101, 7592, 102, 0, 0, 0]])
    mask = (ids != 0).long()
    with torch.no_grad():
        sdpa = encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        with training_attention(encoder, "cpu"):
            assert encoder.config._attn_implementation == "eager"
            eager = encoder(input_ids=ids, attention_mask=mask).last_hidden_state
    assert encoder.config._attn_implementation == "sdpa"  # scoring is left as it was
    assert torch.allclose(sdpa[mask.bool()], eager[mask.bool()], atol=1e-5)
    with training_attention(encoder, "cuda"):  # GPUs keep their fused kernel
        assert encoder.config._attn_implementation == "sdpa"


def test_head_packing_marks_one_head_and_all_its_tails_per_pass(tokenizer) -> None:
    from fsre_cli.tkre.markers import TAIL_OPEN

    pairs = _all_pairs(TEXT, MENTIONS)
    encoded = encode_pairs(pairs, tokenizer, 128, "head")
    assert len(encoded.sequences) == 4  # one pass per head mention, 3 pairs read off each
    for pair, (seq, head, tail) in zip(pairs, encoded.reads):
        tokens = tokenizer.convert_ids_to_tokens(encoded.sequences[seq].input_ids)
        assert tokens[head] == HEAD_OPEN and tokens[tail] == TAIL_OPEN
        assert tokens.count(HEAD_OPEN) == 2 and tokens.count(TAIL_OPEN) == 6  # one head, three tails
        for index, start, end, opener in ((head, pair.head_start, pair.head_end, HEAD_OPEN),
                                          (tail, pair.tail_start, pair.tail_end, TAIL_OPEN)):
            words = tokenizer.convert_tokens_to_string(tokens[index + 2 : tokens.index(opener, index + 1)])
            assert words.endswith(TEXT[start:end].lower())
