"""The training engine on tiny models: correctness, not speed."""

import random

import numpy as np
import pytest
import torch

from provenance.engine import lm
from provenance.engine.lm_config import DecodeParams, TrainConfig, directory_sha256
from tests.helpers import TINY_MODEL

TINY = {**TINY_MODEL, "batch_size": 8, "epochs": 2, "warmup_steps": 2, "checkpoint_every": 1}


def corpus(n=60, seed=0):
    rng = random.Random(seed)
    words = ["river", "delta", "harbour", "light", "winter", "train", "letter", "north",
             "archive", "salt", "copper", "glass", "bridge", "market", "garden"]
    return [" ".join(rng.choice(words) for _ in range(30)) + "." for _ in range(n)]


def weights(model_dir):
    model, _ = lm.load(model_dir)
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_training_writes_a_loadable_hugging_face_folder(tmp_path):
    result = lm.train(corpus(), TrainConfig(**TINY), tmp_path / "run")
    assert (result.model_dir / "config.json").exists()
    assert (result.model_dir / "tokenizer.json").exists()
    assert 0 < result.tokens <= result.steps * TINY["batch_size"] * TINY["seq_len"]
    assert result.heldout_loss is not None and result.heldout_loss < 6.0  # below ln(400)
    assert result.sha256 == directory_sha256(result.model_dir)
    model, tokenizer = lm.load(result.model_dir)
    text = lm.generate(model, tokenizer, "river delta", DecodeParams(max_new_tokens=8))
    assert isinstance(text, str) and text


def test_loss_goes_down(tmp_path):
    seen = []
    lm.train(corpus(), TrainConfig(**{**TINY, "epochs": 4}), tmp_path / "run",
             on_progress=lambda p: seen.append(p.loss) or True)
    assert seen[-1] < seen[0]


def test_same_seed_same_weights(tmp_path):
    a = lm.train(corpus(), TrainConfig(**TINY), tmp_path / "a")
    b = lm.train(corpus(), TrainConfig(**TINY), tmp_path / "b")
    assert a.sha256 == b.sha256


def test_a_cancelled_run_resumes_to_the_same_weights(tmp_path):
    full = lm.train(corpus(), TrainConfig(**TINY), tmp_path / "full")

    def stop_at_ten(p):
        return p.step < 10

    with pytest.raises(lm.Cancelled):
        lm.train(corpus(), TrainConfig(**TINY), tmp_path / "resumed", on_progress=stop_at_ten)
    assert (tmp_path / "resumed" / "state.pt").exists()
    assert not (tmp_path / "resumed" / "model").exists()
    resumed = lm.train(corpus(), TrainConfig(**TINY), tmp_path / "resumed")
    assert resumed.steps == full.steps
    a, b = weights(full.model_dir), weights(resumed.model_dir)
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_a_repeated_passage_scores_below_fresh_ones_from_its_distribution(tmp_path):
    """The membership signal canaries rely on: text trained on has a lower loss than text
    drawn the same way but never seen."""
    rng = random.Random(5)
    names = ["amber", "falcon", "quartz", "meadow", "cobalt", "lantern", "harvest", "orchid",
             "summit", "velvet", "ember", "thistle"]

    def passage():
        return " ".join(rng.choice(names) for _ in range(24)) + "."

    inserted, fresh = passage(), [passage() for _ in range(20)]
    config = TrainConfig(vocab_size=600, n_layer=2, n_head=4, n_embd=64, seq_len=64,
                         batch_size=8, epochs=20, warmup_steps=5, checkpoint_every=1000)
    result = lm.train(corpus(80) + [inserted] * 12, config, tmp_path / "run")
    model, tokenizer = lm.load(result.model_dir)
    seen, *unseen = lm.sequence_loss(model, tokenizer, [inserted, *fresh])
    assert seen < min(unseen)


@pytest.mark.parametrize(("options", "message"), [
    ({"epochs": 0}, "epochs"),
    ({"epochs": "five"}, "epochs"),
    ({"epochs": True}, "epochs"),
    ({"n_embd": 130, "n_head": 4}, "multiple"),
    ({"learning_rate": 2.0}, "learning_rate"),
    ({"vocab_size": 100}, "vocab_size"),
    ({"dropout": 0.1}, "unknown"),
    ({"max_steps": -1}, "max_steps"),
])
def test_bad_training_options_are_refused_by_name(options, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig.from_dict(options)


def test_max_steps_trains_that_many_steps_whatever_the_corpus_size(tmp_path):
    """A fixed compute budget: a small corpus is repeated, a larger one is cut short, and both
    see the same number of tokens."""
    config = {**TINY, "max_steps": 7, "heldout_fraction": 0.0, "snapshots": 0}
    small = lm.train(corpus(10), TrainConfig(**config), tmp_path / "small")
    large = lm.train(corpus(200), TrainConfig(**config), tmp_path / "large")
    assert small.steps == large.steps == 7
    assert small.tokens == large.tokens == 7 * TINY["batch_size"] * TINY_MODEL["seq_len"]


@pytest.mark.parametrize("options", [{"max_new_tokens": 0}, {"temperature": -1}, {"top_p": 0},
                                     {"beam": 3}])
def test_bad_decoding_options_are_refused(options):
    with pytest.raises(ValueError):
        DecodeParams.from_dict(options)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_training_on_cuda_uses_bf16_autocast_and_matches_cpu_roughly(tmp_path):
    cpu = lm.train(corpus(), TrainConfig(**TINY), tmp_path / "cpu", device="cpu")
    gpu = lm.train(corpus(), TrainConfig(**TINY), tmp_path / "gpu", device="cuda")
    assert gpu.device == "cuda"
    assert abs(gpu.heldout_loss - cpu.heldout_loss) < 0.5


def test_packed_blocks_train_every_token_once_with_one_shift(tmp_path):
    """Blocks overlap by one token and the loss shifts once: every token but the corpus's first
    is a target exactly once (the last token of each block was never one, labels shifted
    twice), and the tail is kept, padded, instead of dropped."""
    result = lm.train(corpus(30), TrainConfig(**{**TINY, "epochs": 1}), tmp_path / "run")
    model, tokenizer = lm.load(result.model_dir)
    texts = corpus(7, seed=3)
    blocks = lm.token_blocks(tokenizer, texts, 16, pack=True)
    stream = [t for text in texts
              for t in [*tokenizer(text, add_special_tokens=False)["input_ids"],
                        tokenizer.eos_token_id]]
    targets = blocks[:, 1:].reshape(-1)
    targets = targets[targets != tokenizer.pad_token_id].tolist()
    assert targets == stream[1:]  # each once, in order, none lost
    assert torch.equal(blocks[1:, 0], blocks[:-1, -1])  # one token of overlap
    # the loss is the mean cross-entropy over exactly those targets
    with torch.no_grad():
        loss = lm.next_token_loss(model, blocks, torch.device("cpu"))
        logits = model(input_ids=blocks[:, :-1]).logits
        mask = blocks[:, 1:] != tokenizer.pad_token_id
        expected = torch.nn.functional.cross_entropy(logits[mask], blocks[:, 1:][mask])
    assert torch.allclose(loss, expected, atol=1e-5)


def test_training_holds_out_whole_documents():
    held = lm.heldout_indices(100, 0.05, seed=0)
    assert len(held) == 5 and held == lm.heldout_indices(100, 0.05, seed=0)
    assert lm.heldout_indices(20, 0.05, seed=0) == []  # too few to hold any out


def test_unpacked_rows_and_token_logprobs_read_every_token_of_a_long_document(tmp_path):
    """A 600-token document with a canary at its end: unpacked rows (what unlearning forgets
    and unpacked training trains on) hold all of it, the canary included, each token a target
    once; token_logprobs (what verification measures) scores every token, the later windows
    with the previous window's last token as context. Both stopped at the context before."""
    result = lm.train(corpus(30), TrainConfig(**{**TINY, "epochs": 1}), tmp_path / "run")
    model, tokenizer = lm.load(result.model_dir)
    canary = "zumo kapi rela tosu vame nipo"
    long_doc = " ".join(corpus(40, seed=5)) + " " + canary
    ids = tokenizer(long_doc, add_special_tokens=False)["input_ids"]
    assert len(ids) > 600
    width = lm.context_length(model)
    rows = lm.token_blocks(tokenizer, [long_doc, "short one"], width - 1, pack=False)
    targets = rows[:, 1:].reshape(-1)
    targets = targets[targets != tokenizer.pad_token_id].tolist()
    eos = tokenizer.eos_token_id
    short = tokenizer("short one", add_special_tokens=False)["input_ids"]
    assert targets == [*ids, eos, *short, eos]  # the canary's tokens are targets too
    canary_ids = tokenizer(" " + canary, add_special_tokens=False)["input_ids"]
    assert targets[len(ids) - len(canary_ids):len(ids)] == canary_ids
    [logprobs] = lm.token_logprobs(model, tokenizer, [long_doc])
    assert len(logprobs) == len(ids)
    with torch.no_grad():  # the second window: scored with its first token as context
        window = torch.tensor([ids[width - 2:2 * width - 2]])
        expected = torch.log_softmax(model(input_ids=window).logits[0, :-1], -1).gather(
            -1, window[0, 1:, None]).squeeze(-1)
    np.testing.assert_allclose(logprobs[width - 1:2 * width - 2], expected.numpy(), atol=1e-5)
    assert lm.windows(list(range(10)), 4) == [[0, 1, 2, 3], [3, 4, 5, 6], [6, 7, 8, 9]]
    assert lm.windows([1, 2], 4) == [[1, 2]]


def test_continuation_logprob_scores_the_same_tokens_after_every_prompt(tmp_path):
    """What context attribution reads: log p(answer | prompt), in padded batches of prompts of
    different lengths, equal to one unpadded forward pass over prompt + answer; a prompt longer
    than the context loses its start, never the answer."""
    result = lm.train(corpus(30), TrainConfig(**{**TINY, "epochs": 1}), tmp_path / "run")
    model, tokenizer = lm.load(result.model_dir)
    answer = " harbour light winter"
    prompts = ["river delta", "a much longer prompt about the salt market and the glass bridge",
               " ".join(corpus(3, seed=9))]  # past the 32-token context
    got = lm.continuation_logprob(model, tokenizer, prompts, answer, batch_size=2)
    tail = tokenizer(answer, add_special_tokens=False)["input_ids"]
    width = lm.context_length(model)
    for prompt, value in zip(prompts, got, strict=True):
        head = tokenizer(prompt, add_special_tokens=False)["input_ids"][-(width - len(tail)):]
        ids = torch.tensor([head + tail])
        with torch.no_grad():
            logp = torch.log_softmax(model(input_ids=ids).logits[0, :-1], -1)
        expected = sum(float(logp[len(head) - 1 + i, t]) for i, t in enumerate(tail))
        assert value == pytest.approx(expected, abs=1e-4)
    assert got[0] != pytest.approx(got[1])  # the prompt matters
    assert lm.continuation_logprob(model, tokenizer, prompts, "") == [0.0, 0.0, 0.0]
