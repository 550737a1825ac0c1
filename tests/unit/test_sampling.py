"""The two pieces both samplers share, by hand: positions that skip left padding, and which token a given uniform
number draws, with its log-prob at the temperature. (The draw's frequencies over many numbers, the interval's ends,
and greedy decoding against `generate`: test_generation.py.)"""

import math

import pytest
import torch

from rlhf_course.engine import sampling


def test_positions_count_real_tokens_only():
    mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1], [0, 0, 0, 0, 1]])
    # the first real token is position 0 however much padding precedes it; pads get 0 (they are masked)
    assert sampling.position_ids_from_mask(mask).tolist() == [[0, 0, 0, 1, 2], [0, 1, 2, 3, 4], [0, 0, 0, 0, 0]]


# p = (½, ¼, ⅛, ⅛): cumulative (0.5, 0.75, 0.875, 1.0); the token is the first whose cumulative exceeds u
@pytest.mark.parametrize("u, token", [(0.0, 0), (0.49, 0), (0.5, 1), (0.6, 1), (0.8, 2), (0.875, 3), (0.99, 3)])
def test_inverse_transform_picks_the_first_token_whose_cumulative_exceeds_u(u, token):
    logits = torch.tensor([[0.5, 0.25, 0.125, 0.125]]).log() + 3.0  # unnormalised: softmax removes the +3
    got, logprob = sampling.draw(logits, 1.0, torch.tensor([u], dtype=torch.float64))
    assert got.tolist() == [token]
    assert logprob.item() == pytest.approx(math.log([0.5, 0.25, 0.125, 0.125][token]), abs=1e-6)


def test_the_log_prob_is_the_tempered_distributions():
    """At T = ½, p_T ∝ p² = (¼, 1/16, 1/64, 1/64), total 11/32: p_T = (8/11, 2/11, 1/22, 1/22), cumulative
    (0.7273, 0.9091, 0.9545, 1). u = 0.6 draws token 0 with log(8/11); u = 0.8 token 1 with log(2/11), not the
    untempered log ¼."""
    logits = torch.tensor([[0.5, 0.25, 0.125, 0.125]] * 3).log()
    token, logprob = sampling.draw(logits, 0.5, torch.tensor([0.6, 0.8, 0.95], dtype=torch.float64))
    assert token.tolist() == [0, 1, 2]
    torch.testing.assert_close(logprob, torch.tensor([math.log(8 / 11), math.log(2 / 11), math.log(1 / 22)]))
    # at T = 2, p_T ∝ √p: the same u = 0.6 now falls in token 1's share
    p2 = torch.tensor([0.5, 0.25, 0.125, 0.125]).sqrt()
    p2 = p2 / p2.sum()  # (0.3694, 0.2612, 0.1847, 0.1847): cumulative 0.3694, 0.6306
    token, logprob = sampling.draw(logits[:1], 2.0, torch.tensor([0.6], dtype=torch.float64))
    assert token.tolist() == [1] and logprob.item() == pytest.approx(p2[1].log().item(), abs=1e-6)
