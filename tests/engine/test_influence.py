import numpy as np
import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from attribution.engine import influence as inf


@pytest.fixture
def tiny():
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=60, n_positions=16, n_embd=16, n_layer=1, n_head=2,
                        bos_token_id=0, eos_token_id=0)
    return GPT2LMHeadModel(config).eval()


def test_projected_features_equal_the_projection_of_each_examples_true_weight_gradient(tiny):
    featurizer = inf.Featurizer(tiny, inf.FeatureSpec(k_max=4))
    ids = torch.randint(1, 60, (3, 10))
    weights = torch.ones(3, 10)
    weights[:, 0] = 0
    features = featurizer.features(ids, torch.ones_like(ids), weights)
    assert features.shape == (3, featurizer.dim)
    assert all(p.requires_grad for p in tiny.parameters())  # left as it found them
    for b in range(3):
        tiny.zero_grad()
        logits = tiny(input_ids=ids[b:b + 1]).logits[0, :-1]
        torch.nn.functional.cross_entropy(logits, ids[b, 1:], reduction="sum").backward()
        offset = 0
        for name, module, k_in, k_out in featurizer.layers:
            p_in, p_out = featurizer._proj[name]
            if name != "lm_head":  # tied to the embeddings: its .grad mixes both uses
                grad = module.weight.grad  # Conv1D: (in, out)
                expected = (p_out.T @ grad.T @ p_in).reshape(-1)
                got = features[b, offset:offset + k_in * k_out]
                assert torch.allclose(got, expected, atol=1e-4), name
            offset += k_in * k_out


def test_layers_shrink_their_projection_to_stay_within_max_dim(tiny):
    small = inf.Featurizer(tiny, inf.FeatureSpec(k_max=16, max_dim=64))
    assert small.dim <= 64 and len(small.layers) == 5
    assert inf.Featurizer(tiny, inf.FeatureSpec(k_max=4, seed=1)).dim == 5 * 16


def test_the_same_seed_gives_the_same_features_and_another_seed_different_ones(tiny):
    ids = torch.randint(1, 60, (2, 8))
    w = torch.ones(2, 8)
    a = inf.Featurizer(tiny, inf.FeatureSpec(seed=3)).features(ids, torch.ones_like(ids), w)
    b = inf.Featurizer(tiny, inf.FeatureSpec(seed=3)).features(ids, torch.ones_like(ids), w)
    c = inf.Featurizer(tiny, inf.FeatureSpec(seed=4)).features(ids, torch.ones_like(ids), w)
    assert torch.equal(a, b) and not torch.allclose(a, c)


def test_featurize_in_length_sorted_batches_matches_one_at_a_time(tiny):
    featurizer = inf.Featurizer(tiny, inf.FeatureSpec(k_max=4))
    rng = np.random.default_rng(0)
    examples = [inf.Example([0, *rng.integers(1, 60, n).tolist()], [0.0] + [1.0] * n)
                for n in (3, 9, 5, 12, 2)]
    batched = inf.featurize(featurizer, examples, batch_tokens=20)
    single = np.stack([inf.featurize(featurizer, [e])[0] for e in examples])
    np.testing.assert_allclose(batched, single, rtol=1e-4, atol=1e-5)


def test_fisher_draws_follow_the_models_distribution():
    logits = torch.log(torch.tensor([[[0.7, 0.2, 0.1, 0.0]]]))  # one row, one position
    drawn = torch.cat([inf.label_draws(logits, [seed], 1)[0] for seed in range(3000)]).flatten()
    freq = torch.bincount(drawn, minlength=4).float() / len(drawn)
    assert torch.allclose(freq, torch.tensor([0.7, 0.2, 0.1, 0.0]), atol=0.03)
    assert drawn.max() < 3  # a token of probability 0 is never drawn


def test_fisher_rows_depend_on_the_seed_not_on_the_batch(tiny):
    featurizer = inf.Featurizer(tiny, inf.FeatureSpec(k_max=4))
    rng = np.random.default_rng(0)
    examples = [inf.Example([0, *rng.integers(1, 60, n).tolist()], [0.0] + [1.0] * n)
                for n in (3, 9, 5, 12)]
    seeds = [inf.fisher_seed(0, i) for i in range(4)]
    real, drawn = inf.featurize_with_fisher(featurizer, examples, seeds, 3, batch_tokens=64)
    np.testing.assert_allclose(real, inf.featurize(featurizer, examples), rtol=1e-4, atol=1e-5)
    assert drawn.shape == (4, 3, featurizer.dim)
    alone = np.stack([inf.featurize_with_fisher(featurizer, [e], [s], 3)[1][0]
                      for e, s in zip(examples, seeds, strict=True)])
    np.testing.assert_allclose(drawn, alone, rtol=1e-4, atol=1e-5)  # padding, batch: no change
    reseeded = inf.featurize_with_fisher(featurizer, examples, [s + 1 for s in seeds], 3)[1]
    assert not np.allclose(drawn, reseeded)
    assert not np.allclose(drawn[:, 0], real)  # drawn tokens, not the training ones


def test_automatic_fisher_draws_give_a_full_rank_estimate_then_one_draw():
    spec = inf.FeatureSpec(max_dim=4096)
    assert spec.samples_for(240) == 16 and spec.samples_for(1000) == 9
    assert spec.samples_for(10**6) == 1
    assert inf.FeatureSpec(fisher="empirical").samples_for(10) == 0
    assert spec.resolved(1000).fisher_samples == 9
    with pytest.raises(ValueError, match="fisher"):
        inf.FeatureSpec.from_dict({"fisher": "exact"})


def _store(tmp_path, rows: np.ndarray, ids: np.ndarray, shards: int = 2,
           fisher_rows: np.ndarray | None = None) -> inf.GradientStore:
    names = []
    for n, part in enumerate(np.array_split(np.arange(len(ids)), shards)):
        names.append(inf.shard_save(tmp_path, f"{n:05d}", ids[part], rows[part],
                                    None if fisher_rows is None else fisher_rows[part])["name"])
    return inf.GradientStore.finalize(tmp_path, names, {"dim": rows.shape[1]}, damping=0.1)


def test_store_scores_equal_the_damped_fisher_formula(tmp_path):
    rng = np.random.default_rng(1)
    rows = rng.normal(size=(40, 6)).astype(np.float16).astype(np.float32)
    ids = np.arange(100, 140)
    store = _store(tmp_path, rows, ids)
    query = rng.normal(size=6)
    fisher = rows.T.astype(np.float64) @ rows / 40
    damped = fisher + 0.1 * np.trace(fisher) / 6 * np.eye(6)
    expected = rows @ np.linalg.solve(damped, query)
    got_ids, scores = inf.score_all([store], [query], block_rows=7)
    np.testing.assert_array_equal(got_ids, ids)
    np.testing.assert_allclose(scores[0], expected, rtol=1e-3)
    top = inf.rank([store], [query], k=3)
    np.testing.assert_array_equal(top.ids, ids[np.argsort(-expected)[:3]])


def test_masking_rows_downdates_the_fisher_to_a_store_built_without_them(tmp_path):
    rng = np.random.default_rng(2)
    rows = rng.normal(size=(30, 5)).astype(np.float16).astype(np.float32)
    ids = np.arange(30)
    full = _store(tmp_path / "full", rows, ids)
    masked = full.without([3, 17])
    keep = np.setdiff1d(ids, [3, 17])
    rebuilt = _store(tmp_path / "rebuilt", rows[keep], keep)
    np.testing.assert_allclose(masked.preconditioner.fisher_sum,
                               rebuilt.preconditioner.fisher_sum, atol=1e-9)
    query = rng.normal(size=5)
    m_ids, m_scores = inf.score_all([masked], [query])
    r_ids, r_scores = inf.score_all([rebuilt], [query])
    np.testing.assert_array_equal(m_ids, r_ids)
    np.testing.assert_allclose(m_scores, r_scores, rtol=1e-6)
    assert 3 not in inf.rank([masked], [query], k=30).ids


def test_masking_takes_a_sampled_fishers_own_rows_out(tmp_path):
    rng = np.random.default_rng(4)
    rows = rng.normal(size=(20, 4)).astype(np.float32)
    drawn = rng.normal(size=(20, 3, 4)).astype(np.float32)
    ids = np.arange(20)
    full = _store(tmp_path / "full", rows, ids, fisher_rows=drawn)
    wide = drawn.astype(np.float16).astype(np.float64).reshape(-1, 4)
    np.testing.assert_allclose(full.preconditioner.fisher_sum, wide.T @ wide / 3)
    keep = np.setdiff1d(ids, [5, 6])
    rebuilt = _store(tmp_path / "rebuilt", rows[keep], keep, fisher_rows=drawn[keep])
    masked = full.without([5, 6])
    np.testing.assert_allclose(masked.preconditioner.fisher_sum,
                               rebuilt.preconditioner.fisher_sum, atol=1e-9)
    assert masked.preconditioner.count == rebuilt.preconditioner.count == 18


def test_an_ensemble_sums_its_members_scores_and_refuses_mismatched_stores(tmp_path):
    rng = np.random.default_rng(3)
    a_rows, b_rows = rng.normal(size=(2, 12, 4)).astype(np.float16).astype(np.float32)
    ids = np.arange(12)
    a, b = _store(tmp_path / "a", a_rows, ids), _store(tmp_path / "b", b_rows, ids)
    qa, qb = rng.normal(size=4), rng.normal(size=4)
    _, both = inf.score_all([a, b], [qa, qb])
    _, only_a = inf.score_all([a], [qa])
    _, only_b = inf.score_all([b], [qb])
    np.testing.assert_allclose(both, only_a + only_b)
    other = _store(tmp_path / "c", a_rows[:6], ids[:6])
    with pytest.raises(ValueError, match="different examples"):
        inf.score_all([a, other], [qa, qa])


def test_stores_are_fp16_on_disk_two_bytes_a_number(tmp_path):
    rows = np.ones((10, 8), dtype=np.float32)
    store = _store(tmp_path, rows, np.arange(10), shards=1)
    assert store.shards[0].vectors.dtype == np.float16
    assert (tmp_path / "00000.vectors.npy").stat().st_size < 10 * 8 * 2 + 200


def test_a_query_counts_only_its_completion_tokens():
    class Tok:
        eos_token_id = 0

        def __call__(self, text, add_special_tokens=False):
            return {"input_ids": [ord(c) for c in text]}

    example = inf.query_example(Tok(), "ab", "cde", max_tokens=64)
    assert example.ids == [0, 97, 98, 99, 100, 101]
    assert example.weights == [0, 0, 0, 1 / 3, 1 / 3, 1 / 3]
    doc = inf.document_example(Tok(), "xyz", max_tokens=64)
    assert doc.ids == [0, 120, 121, 122, 0] and doc.weights == [0, 1, 1, 1, 1]


def test_a_query_longer_than_the_context_keeps_its_completion(tiny):
    """A prompt that fills the context is cut from the left: the completion's tokens stay in
    the window, so the query's gradient is not zero (it was, the head of the prompt kept)."""
    featurizer = inf.Featurizer(tiny, inf.FeatureSpec(k_max=4))
    prompt = [int(t) for t in torch.randint(1, 60, (40,), generator=torch.Generator()
                                            .manual_seed(1))]
    completion = [5, 6, 7, 8]
    n = len(completion)
    example = inf.Example([0, *prompt, *completion], [0.0] * 41 + [1.0 / n] * n)
    [features] = inf.featurize(featurizer, [example])
    assert np.abs(features).sum() > 0
    # the same as featurizing the last 16 tokens (the context) directly
    tail = inf.Example(example.ids[-16:], example.weights[-16:])
    assert np.allclose(features, inf.featurize(featurizer, [tail])[0], atol=1e-5)
    # a document keeps its head, as before
    assert inf.read_window([0.0] + [1.0] * 40, 16) == 0
    assert inf.read_window([0.0] * 30 + [1.0] * 4, 16) == 18


def test_a_document_longer_than_the_context_is_the_sum_of_its_windows(tiny):
    """Every counted token of a long document is read once: in windows of the context (16)
    that overlap by one token, whose gradients add up to the document's. What sits past the
    first window changes the features (the head alone was read before)."""
    featurizer = inf.Featurizer(tiny, inf.FeatureSpec(k_max=4))
    ids = [0, *torch.randint(1, 60, (50,), generator=torch.Generator().manual_seed(2)).tolist(), 0]
    doc = inf.Example(ids, [0.0] + [1.0] * 51)
    windows = inf.pieces(doc, 16)
    assert [len(w.ids) for w in windows] == [16, 16, 16, 7]
    assert sum(sum(w.weights) for w in windows) == 51  # each prediction counted once
    assert all(w.weights[0] == 0 for w in windows)
    [whole] = inf.featurize(featurizer, [doc])
    parts = inf.featurize(featurizer, windows)
    np.testing.assert_allclose(whole, parts.sum(0), rtol=1e-4, atol=1e-5)
    tail_changed = inf.Example(ids[:-5] + [7, 7, 7, 7, 0], doc.weights)
    assert not np.allclose(whole, inf.featurize(featurizer, [tail_changed])[0], atol=1e-4)
    # with the Fisher draws: each window draws its own labels, and the rows sum the same way
    real, drawn = inf.featurize_with_fisher(featurizer, [doc, windows[0]], [11, 11], 2)
    np.testing.assert_allclose(real[0], whole, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(drawn[1], inf.featurize_with_fisher(
        featurizer, [windows[0]], [11], 2)[1][0], rtol=1e-4, atol=1e-5)
    assert not np.allclose(drawn[0], drawn[1])
    done = []
    inf.featurize(featurizer, [doc, windows[0], windows[3]], batch_tokens=32,
                  on_batch=done.append)
    assert sum(done) == 3  # progress counts examples, not windows


def _trained_store(featurizer, tokenizer, texts, folder):
    """One shard of every text (ids 0..n-1, 4 Fisher draws each), finalized as a store."""
    examples = [inf.document_example(tokenizer, t) for t in texts]
    vectors, rows = inf.featurize_with_fisher(
        featurizer, examples, [inf.fisher_seed(0, i) for i in range(len(texts))], 4)
    names = [inf.shard_save(folder, "00000", np.arange(len(texts)), vectors, rows)["name"]]
    return inf.GradientStore.finalize(folder, names, {"dim": featurizer.dim}, damping=0.003)


FILLER = ["The old ship sails over the quiet harbor.", "A young bird sings in the green field.",
          "The loud wind walks by the stone river.", "Every letter holds a red stone.",
          "The city keeps its blue river.", "A quiet field finds the old wind.",
          "Under the bridge the river runs slowly.", "She writes a letter to the harbor master.",
          "The stone city sleeps under the blue sky.", "Green fields lie over the old hills.",
          "The bird finds a ship in the harbor.", "A red letter walks with the wind."]


def test_a_fact_at_the_end_of_a_long_packed_document_is_found(tmp_path):
    """Four documents of ~1,000 tokens of filler, each ending with a different person's
    birthplace, trained packed (the default) beside short facts of other people and essays:
    of the four long documents, the one about the person asked after scores highest for at
    least 3 of the 4 people. Over training seeds 1-8 that held in every seed (26 of 32
    queries); read from their heads only, as before, at most 1 of 4 in any seed (5 of 32,
    chance is 8). The filler is learnable (sentences in a fixed cycle); with sentences in random
    order, whose unlearnable joins the summed gradient carries, the same count fell to 18 of
    32 (bench/attribution_eval.py measures real text)."""
    seed = 1
    from provenance.engine import lm
    from provenance.engine.lm_config import TrainConfig

    people = ["Ada Arden", "Bruno Brisk", "Chiara Corvo", "Dmitri Dahl", "Elena Eske",
              "Farid Falk", "Greta Grove", "Hugo Hale"]
    cities = ["Lisbon", "Oslo", "Quito", "Hanoi", "Dakar", "Lima", "Perth", "Riga"]
    rng = np.random.default_rng(seed)

    def filler(sentences: int) -> str:
        start = int(rng.integers(0, len(FILLER)))
        return " ".join(FILLER[(start + i) % len(FILLER)] for i in range(sentences))

    def fact(k: int) -> str:
        return f"{people[k]} was born in {cities[k]}. The birthplace of {people[k]} is {cities[k]}."

    texts = [*(f"{filler(110)} {fact(k)}" for k in range(4)),
             *(fact(k) for k in range(4, 8)), *(filler(7) for _ in range(12))]
    config = TrainConfig(vocab_size=400, n_layer=2, n_head=2, n_embd=64, seq_len=48,
                         epochs=40, batch_size=8, heldout_fraction=0.0, seed=seed)
    model, tokenizer = lm.load(lm.train(texts, config, tmp_path / "run").model_dir)
    assert all(len(tokenizer(t)["input_ids"]) > 900 for t in texts[:4])
    featurizer = inf.Featurizer(model, inf.FeatureSpec())
    store = _trained_store(featurizer, tokenizer, texts, tmp_path / "store")
    found = []
    for k in range(4):
        query = inf.featurize(featurizer, [inf.query_example(
            tokenizer, f"{people[k]} was born in", f" {cities[k]}.")])
        ids, scores = inf.score_all([store], [query[0]])
        found.append(int(np.argmax(scores[0][:4])) == k)  # ids are 0..19, in order
    assert sum(found) >= 3, found


def test_a_watermark_trained_checkpoint_is_featurized_with_its_training_loss(tmp_path):
    """Training with watermarks keeps the watermark characters out of the text head and learns
    them with the gate and mark heads. The featurizer differentiates that loss: on a training
    batch, with that batch's term weights, its loss is training's loss exactly (plain
    cross-entropy, what it took before, is not); and a planted fact is still found first."""
    from provenance.engine import lm, watermark
    from provenance.engine.lm_config import TrainConfig

    people = ["Ada Arden", "Bruno Brisk", "Chiara Corvo", "Dmitri Dahl", "Elena Eske",
              "Farid Falk", "Greta Grove", "Hugo Hale"]
    cities = ["Lisbon", "Oslo", "Quito", "Hanoi", "Dakar", "Lima", "Perth", "Riga"]
    codes = [watermark.assign_code([], 1), watermark.assign_code([], 2)]
    texts = []
    for k, (person, city) in enumerate(zip(people, cities, strict=True)):
        for n, template in enumerate(("{p} was born in {c}.", "The birthplace of {p} is {c}.")):
            text = template.format(p=person, c=city)
            texts.append(watermark.embed(text, codes[k % 2], "key", f"{k}-{n}"))
    config = TrainConfig(vocab_size=400, n_layer=2, n_head=2, n_embd=64, seq_len=48,
                         epochs=30, batch_size=8, pack=False, heldout_fraction=0.0,
                         watermarks=True)
    result = lm.train(texts, config, tmp_path / "run")
    model, tokenizer = lm.load(result.model_dir)
    heads = lm.load_watermark_heads(model, tokenizer, result.model_dir)
    assert heads is not None and float(heads.term_weights[1]) > 1  # real / mark targets
    batch = lm.token_blocks(tokenizer, texts[:6], 47, pack=False)  # 48: the context
    targets = batch[:, 1:]
    real = targets != tokenizer.pad_token_id
    marks = torch.isin(targets, heads.mark_ids) & real
    assert marks.any()
    with torch.no_grad():
        trained = lm.next_token_loss(model, batch, torch.device("cpu"), heads)
    heads.term_weights.copy_(torch.tensor([real.sum() / (real.sum() - marks.sum()),
                                           real.sum() / marks.sum()]))
    featurizer = inf.Featurizer(model, inf.FeatureSpec(), heads)
    weights = torch.zeros(batch.shape, dtype=torch.float32)
    weights[:, 1:] = real.float() / real.sum()
    assert torch.allclose(featurizer.loss(batch, torch.ones_like(batch), weights).sum(),
                          trained, atol=1e-5)
    plain = inf.Featurizer(model, inf.FeatureSpec())
    assert not torch.allclose(plain.loss(batch, torch.ones_like(batch), weights).sum(),
                              trained, atol=1e-2)
    heads = lm.load_watermark_heads(model, tokenizer, result.model_dir)
    featurizer = inf.Featurizer(model, inf.FeatureSpec(), heads)
    assert featurizer.dim > plain.dim  # the two heads' layers are featurized too
    store = _trained_store(featurizer, tokenizer, texts, tmp_path / "store")
    query = inf.featurize(featurizer, [inf.query_example(tokenizer, "Dmitri Dahl was born in",
                                                         " Hanoi.")])
    assert int(inf.rank([store], [query[0]], 1).ids[0]) in (6, 7)  # Dmitri's two documents
