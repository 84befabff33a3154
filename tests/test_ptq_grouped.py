"""PTQ of grouped and depthwise convs (issue 24): each group's statistics come from its own
input channels (K = C/g·kh·kw), every output channel's exact worst case stays within P
(with tiles T), the layer holds exactly the integers returned, and a group's result does
not depend on the other groups' inputs."""

import brevitas.nn as qnn
import numpy as np
import pytest
import torch
from torch import nn

from axe_deploy.core import accumulator
from axe_deploy.flow import config
from axe_deploy.quant.driver import calibrate, group_slices, quantize_model
from axe_deploy.quant.quantizers import ReluQuant, WeightQuant, input_quant

torch.set_num_threads(1)
C = 4


class FloatDW(nn.Module):
    def __init__(self):
        super().__init__()
        self.dw = nn.Conv2d(C, C, 3, padding=1, groups=C)
        self.relu = nn.ReLU()
        self.gc = nn.Conv2d(C, 6, 3, padding=1, groups=2, bias=False)

    def forward(self, x):
        return self.gc(self.relu(self.dw(x)))


class QuantDW(nn.Module):
    def __init__(self, weight_bits=4):
        super().__init__()
        self.inp = qnn.QuantIdentity(act_quant=input_quant(1.0, 4), return_quant_tensor=True)
        self.dw = qnn.QuantConv2d(C, C, 3, padding=1, groups=C, weight_quant=WeightQuant,
                                  weight_bit_width=weight_bits)
        self.relu = qnn.QuantReLU(act_quant=ReluQuant, bit_width=4, return_quant_tensor=True)
        self.gc = qnn.QuantConv2d(C, 6, 3, padding=1, groups=2, bias=False, weight_quant=WeightQuant,
                                  weight_bit_width=weight_bits)

    def forward(self, x):
        return self.gc(self.relu(self.dw(self.inp(x))))


def models(seed=0):
    torch.manual_seed(seed)
    f = FloatDW().eval()
    q = QuantDW()
    q.load_state_dict(f.state_dict(), strict=False)
    x = torch.rand(32, C, 5, 5)
    calibrate(q, x)
    return f, q.eval(), x


def quant_cfg(**kw):
    return dict(config.defaults()["quant"], weight_bits=4, **kw)


def test_group_slices_follow_the_unfold_layout():
    _, q, _ = models()
    assert group_slices(q.dw) == [(slice(i, i + 1), slice(9 * i, 9 * i + 9)) for i in range(C)]
    assert group_slices(q.gc) == [(slice(0, 3), slice(0, 18)), (slice(3, 6), slice(18, 36))]


@pytest.mark.parametrize("algorithm, P, T", [("rtn", None, None), ("gpfq", 10, None), ("optq", 10, None),
                                              ("spfq", 10, None), ("optq", 9, 9), ("gpfq", 9, 9)])
def test_grouped_layers_within_p_per_channel(algorithm, P, T):
    f, q, x = models()
    infos = quantize_model(f, q, x, quant_cfg(algorithm=algorithm, accumulator_bits=P or 0, tile_size=T or 0),
                           progress=False)
    for name, M, K, x_max in (("dw", C, 9, 15), ("gc", 6, 18, 15)):
        layer, info = q.get_submodule(name), infos[name]
        ints = layer.quant_weight().int().reshape(M, -1).to(torch.int64).numpy()
        assert ints.shape == (M, K) and info.accumulator.K == K
        assert np.abs(ints).max() <= 7
        tiles = accumulator.split_tiles(ints, T or K)  # every channel's (tile's) exact worst case
        hi = np.where(tiles > 0, tiles, 0).sum(-1) * x_max
        lo = np.where(tiles < 0, tiles, 0).sum(-1) * x_max
        assert (info.accumulator.lo, info.accumulator.hi) == (int(lo.min()), int(hi.max()))
        assert info.l1.tolist() == np.abs(ints).sum(1).tolist()
        if P:
            assert hi.max() <= 2 ** (P - 1) - 1 and lo.min() >= -(2 ** (P - 1))
            assert info.budget_use.shape == (M,) and info.budget_use.max() <= 1
        torch.testing.assert_close(layer.quant_weight().value, layer.weight, rtol=0, atol=0)


def test_a_group_sees_only_its_own_input_channels():
    """Changing the input channels of group 1 leaves the integers of group 0 unchanged."""
    f, q, x = models()
    f2, q2, _ = models()
    x2 = x.clone()
    x2[:, 2:] = torch.rand_like(x2[:, 2:]) * 0.3
    cfg = quant_cfg(algorithm="optq", accumulator_bits=10, layers={"dw": {"skip": True}})
    quantize_model(f, q, x, cfg, progress=False)
    quantize_model(f2, q2, x2, cfg, progress=False)
    a, b = (m.gc.quant_weight().int().to(torch.int64) for m in (q, q2))
    assert torch.equal(a[:3], b[:3]) and not torch.equal(a[3:], b[3:])


def test_module_swap_takes_a_plain_depthwise_model():
    from axe_deploy.quant.convert import bundle_from_float
    torch.manual_seed(0)
    x = torch.rand(32, C, 5, 5)
    bundle = bundle_from_float(FloatDW().eval(), quant_cfg(act_bits=4), calib_x=x, test_x=x,
                               test_y=torch.zeros(32, dtype=torch.long))
    assert type(bundle.quant_model).__name__ == "QuantFloatDW"  # the swap, not graph mode
    assert bundle.quant_model.dw.groups == C and bundle.quant_model.gc.groups == 2
    infos = bundle.quantize(quant_cfg(algorithm="gpfq", accumulator_bits=10), progress=False)
    for name in ("dw", "gc"):
        acc = infos[name].accumulator
        assert acc.K == {"dw": 9, "gc": 18}[name] and -(2**9) <= acc.lo and acc.hi <= 2**9 - 1
