"""Reference values for the core ops (issue 2) from PyTorch: forward outputs and the
gradients of loss = sum(out * w) for every input. Writes tests/fixtures/ops/core.txt.
Run: python3 tests/reference/gen_core_fixtures.py (needs torch; CI only reads the output)."""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
from fixture_io import write_fixture  # noqa: E402

torch.manual_seed(0)
out = {}


def case(name, fn, *inputs):
    """inputs: float tensors get gradients; int tensors are passed as they are."""
    ins = [x.clone().requires_grad_(x.is_floating_point()) for x in inputs]
    y = fn(*ins)
    w = torch.linspace(-1.0, 1.0, y.numel()).reshape(y.shape)
    (y * w).sum().backward()
    for i, x in enumerate(ins):
        out[f"{name}.in{i}"] = x.detach()
        if x.is_floating_point():
            out[f"{name}.grad{i}"] = x.grad
    out[f"{name}.out"] = y.detach()


r = torch.randn
case("matmul_nn", lambda a, b: a @ b, r(2, 3, 4), r(2, 4, 5))
case("matmul_nt", lambda a, b: a @ b.transpose(-1, -2), r(2, 3, 4), r(2, 5, 4))
case("matmul_tn", lambda a, b: a.transpose(-1, -2) @ b, r(2, 4, 3), r(2, 4, 5))
case("matmul_tt", lambda a, b: a.transpose(-1, -2) @ b.transpose(-1, -2), r(2, 4, 3), r(2, 5, 4))
case("matmul_shared", lambda a, b: a @ b.t(), r(2, 3, 4), r(5, 4))
case("matmul_shared_t", lambda a, b: a.transpose(-1, -2) @ b, r(2, 4, 3), r(4, 5))
case("add_bcast", lambda a, b: a + b, r(2, 3, 4), r(4))
case("sub_bcast", lambda a, b: a - b, r(2, 1, 4), r(3, 1))
case("mul_bcast", lambda a, b: a * b, r(2, 3, 4), r(2, 3, 1))
case("div_bcast", lambda a, b: a / b, r(2, 3, 4), torch.rand(3, 4) + 0.5)
case("scale", lambda a: a * 0.75, r(3, 4))
case("sum_axis", lambda a: a.sum(1), r(2, 3, 4))
case("mean_axis", lambda a: a.mean(-1, keepdim=True), r(2, 3, 4))
case("max_axis", lambda a: a.max(0).values, r(3, 5))
case("sum_all", lambda a: a.sum().reshape(1), r(2, 3))
case("mean_all", lambda a: a.mean().reshape(1), r(2, 3))
case("gelu_tanh", lambda a: F.gelu(a, approximate="tanh"), r(10) * 3)
case("gelu_erf", lambda a: F.gelu(a), r(10) * 3)
case("silu", F.silu, r(10) * 3)
case("relu", F.relu, r(10) * 3)
case("softmax", lambda a: F.softmax(a, -1), r(3, 7) * 2)
case("log_softmax", lambda a: F.log_softmax(a, -1), r(3, 7) * 2)
case("permute", lambda a: a.permute(2, 0, 1).contiguous(), r(2, 3, 4))
case("concat", lambda a, b: torch.cat([a, b], 1), r(2, 3, 4), r(2, 2, 4))
case("slice", lambda a: a[:, 1:3, :], r(2, 4, 3))
case("index_select", lambda a, i: a.index_select(1, i), r(2, 5, 3), torch.tensor([4, 0, 2, 2], dtype=torch.int32))
case("index_copy", lambda a, i, s: a.index_copy(0, i.long(), s), r(5, 3), torch.tensor([3, 1], dtype=torch.int32), r(2, 3))
case("index_add", lambda a, i, s: a.index_add(0, i.long(), s), r(5, 3), torch.tensor([3, 1, 3], dtype=torch.int32), r(3, 3))
case("embedding", lambda w, i: F.embedding(i, w), r(6, 4), torch.tensor([[1, 5, 1], [0, 2, 1]], dtype=torch.int32))

here = os.path.dirname(os.path.abspath(__file__))
write_fixture(os.path.join(here, "..", "fixtures", "ops", "core.txt"), out,
              comment=f"core op references, torch {torch.__version__}; gradients of sum(out * linspace(-1, 1))")
