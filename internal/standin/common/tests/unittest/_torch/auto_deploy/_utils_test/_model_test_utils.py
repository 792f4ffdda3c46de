"""Test helpers for AutoDeploy model tests (adbot demo checkout: stdlib only).

TensorRT-LLM's own version works on torch tensors; this one takes tensors
(through .tolist()) or nested lists of numbers, so that it runs without torch.
"""

import math


def _flat(x):
    if hasattr(x, "detach"):
        x = x.detach().float().cpu()
    if hasattr(x, "tolist"):
        x = x.tolist()
    if isinstance(x, (list, tuple)):
        out = []
        for v in x:
            out.extend(_flat(v))
        return out
    return [float(x)]


def assert_rmse_close(actual, expected, rmse_ratio_tol, msg=""):
    """Asserts rmse(actual - expected) / rmse(expected) <= rmse_ratio_tol."""
    a, e = _flat(actual), _flat(expected)
    assert len(a) == len(e), "%sshape mismatch: %d vs %d values" % (msg and msg + ": ", len(a), len(e))
    if not a:
        return
    diff = math.sqrt(sum((x - y) ** 2 for x, y in zip(a, e)) / len(a))
    ref = math.sqrt(sum(y * y for y in e) / len(e))
    ratio = diff / ref if ref > 0 else diff
    assert ratio <= rmse_ratio_tol, "%srmse ratio %.6g exceeds tolerance %.6g" % (msg and msg + ": ", ratio, rmse_ratio_tol)
