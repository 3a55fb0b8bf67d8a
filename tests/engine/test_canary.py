
import numpy as np
import pytest

from provenance.engine.canary import (
    WORDS,
    CanarySpec,
    bonferroni,
    calibration,
    canary_sequence,
    carrier_documents,
    exact_p_value,
    membership_test,
    null_sequences,
)


def test_the_canary_is_secret_and_reproducible():
    spec = CanarySpec()
    a = canary_sequence(spec, "secret-1")
    assert a == canary_sequence(spec, "secret-1") != canary_sequence(spec, "secret-2")
    assert len(a.split()) == 12 and all(w in WORDS for w in a.split())
    assert a not in null_sequences(spec, "secret-1", 200)
    chars = canary_sequence(CanarySpec(kind="chars", length=20), "s")
    assert len(chars) == 20 and chars.isalnum()


def test_carriers_are_a_keyed_choice_of_k_documents():
    shas = [f"{i:064x}" for i in range(50)]
    chosen = carrier_documents("key", shas, 8)
    assert len(set(chosen)) == 8 and chosen == carrier_documents("key", list(reversed(shas)), 8)
    assert chosen != carrier_documents("other key", shas, 8)


def test_the_p_value_is_the_rank():
    null = np.array([1.0, 2.0, 3.0, 4.0])
    assert exact_p_value(0.5, null) == 1 / 5
    assert exact_p_value(2.0, null) == 3 / 5
    assert exact_p_value(9.0, null) == 1.0


def test_p_values_are_uniform_under_the_null_in_simulation():
    """When the 'canary' is just another draw from the null distribution, P(p <= a) = a."""
    rng = np.random.default_rng(0)
    ps = np.array([exact_p_value(rng.normal(), rng.normal(size=999)) for _ in range(4000)])
    for alpha in (0.01, 0.05, 0.1, 0.5):
        assert abs(np.mean(ps <= alpha) - alpha) < 3 * np.sqrt(alpha * (1 - alpha) / 4000) + 1e-3
    assert calibration(rng.normal(size=1000), rng.normal(size=2000)) == pytest.approx(0.01,
                                                                                    abs=0.006)


def test_a_memorised_sequence_gets_a_small_p_and_a_negative_z():
    rng = np.random.default_rng(1)
    null = rng.normal(5.0, 0.3, size=1000)
    result = membership_test(3.0, null)
    assert result.p_value == 1 / 1001 and result.z < -6
    assert result.null_n == 1000 and result.null_quantiles["q01"] < result.null_quantiles["q99"]


def test_bonferroni_scales_and_caps():
    assert bonferroni([0.001, 0.02, 0.5]) == [0.003, 0.06, 1.0]


@pytest.mark.parametrize("options", [{"kind": "emoji"}, {"length": 2}, {"copies": 0},
                                     {"copies": True}, {"colour": "red"},
                                     {"kind": "chars", "length": 12},  # 62 bits: guessable
                                     {"kind": "words", "length": 5}])
def test_bad_canary_options_are_refused(options):
    with pytest.raises(ValueError):
        CanarySpec.from_dict(options)


def test_a_canary_has_at_least_64_bits_of_entropy():
    assert CanarySpec.from_dict({"kind": "chars", "length": 13}).bits >= 64
    assert CanarySpec.from_dict({"kind": "words", "length": 6}).bits >= 64
    with pytest.raises(ValueError, match="at least 13 chars"):
        CanarySpec.from_dict({"kind": "chars", "length": 8})


def test_spec_round_trips():
    spec = CanarySpec.from_dict({"kind": "chars", "length": 16, "copies": 4})
    assert CanarySpec.from_dict(spec.to_dict()) == spec


def test_the_null_set_is_large_enough_for_bonferroni():
    from provenance.engine.canary import min_null_size

    for tests in (1, 7, 15, 100):
        n = min_null_size(tests, 0.01)
        assert bonferroni([1 / (n + 1)] * tests)[0] < 0.01
