"""A passing suite shaped like a model's hierarchical tests."""
import pytest


@pytest.mark.parametrize("B,S", [(1, 8), (2, 16)])
def test_block_equivalence(B, S):
    assert B * S > 0


def test_layer_equivalence():
    assert True


def test_full_model_equivalence():
    assert True


def test_export():
    assert True
