"""Brevitas graph mode for FX-traceable float models (issue 24): BatchNorm merged, residual
sums re-quantized to one scale, depthwise conv, ReLU6 and a global average pool; module
names kept; bundle_from_float takes it when the module swap cannot; the PTQ holds P on
every layer and the exported graph annotates and checks exact."""

import brevitas.nn as qnn
import pytest
import torch
from torch import nn

from axe_deploy.flow import config
from axe_deploy.graph.annotate import AnnotateAccumulators, copy_annotations
from axe_deploy.graph.annotation import Annotation
from axe_deploy.graph.check import check_rows
from axe_deploy.graph.sums import sum_nodes, unaligned_adds
from axe_deploy.graph.validate import integer_check, run_qonnx
from axe_deploy.quant.convert import UnsupportedModuleError, bundle_from_float
from axe_deploy.quant.export import export_model
from axe_deploy.quant.graph_mode import quantize_float_model

torch.set_num_threads(1)


class Tiny(nn.Module):
    """stem conv+BN+ReLU, a residual block with a 1x1 stride-2 projection, a depthwise conv
    with ReLU6, a global average pool and a linear head."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU())
        self.conv1 = nn.Conv2d(4, 8, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu = nn.ReLU()
        self.proj = nn.Sequential(nn.Conv2d(4, 8, 1, stride=2, bias=False), nn.BatchNorm2d(8))
        self.out_relu = nn.ReLU()
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.relu6 = nn.ReLU6()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        x = self.stem(x)
        x = self.out_relu(self.relu(self.bn1(self.conv1(x))) + self.proj(x))
        return self.fc(torch.flatten(self.pool(self.relu6(self.dw(x))), 1))


def trained_tiny():
    torch.manual_seed(0)
    model = Tiny()
    model.train()
    with torch.no_grad():  # non-trivial BatchNorm statistics
        for _ in range(3):
            model(torch.rand(16, 1, 6, 6))
    return model.eval()


def quant_cfg(**kw):
    return dict(config.defaults()["quant"], weight_bits=4, act_bits=4, input_bits=8, **kw)


def test_graph_mode_keeps_names_and_the_float_function():
    f = trained_tiny()
    twin, q = quantize_float_model(f, weight_bits=4, act_bits=4)
    x = torch.rand(8, 1, 6, 6)
    with torch.no_grad():
        assert float((twin(x) - f(x)).abs().max()) < 1e-5
    quant = [n for n, m in q.named_modules() if isinstance(m, (qnn.QuantConv2d, qnn.QuantLinear))]
    assert quant == ["stem.0", "conv1", "proj.0", "dw", "fc"]
    assert not any(isinstance(m, nn.BatchNorm2d) for m in twin.modules())  # merged into the convs
    assert q.get_submodule("dw").groups == 8


@pytest.fixture(scope="module")
def quantized():
    f = trained_tiny()
    x = torch.rand(64, 1, 6, 6)
    y = torch.randint(0, 3, (64,))
    bundle = bundle_from_float(f, quant_cfg(), calib_x=x, test_x=x, test_y=y)
    P = 10
    infos = bundle.quantize(quant_cfg(algorithm="optq", accumulator_bits=P), progress=False)
    return bundle, infos, x, P


def test_bundle_from_float_takes_it_through_graph_mode_and_holds_p(quantized):
    bundle, infos, x, P = quantized
    assert sorted(infos) == ["conv1", "dw", "fc", "proj.0", "stem.0"]
    for name, info in infos.items():
        assert info.accumulator.hi <= 2 ** (P - 1) - 1 and info.accumulator.lo >= -(2 ** (P - 1)), name
    assert infos["dw"].accumulator.K == 9 and infos["proj.0"].accumulator.K == 4


def test_exported_graph_is_integer_and_checks_exact(quantized):
    bundle, infos, x, P = quantized
    qonnx, qcdq = export_model(bundle.quant_model, x)
    annotated = qonnx.transform(AnnotateAccumulators())
    copy_annotations(annotated, qcdq)  # the sums too, matched by node name
    assert sorted(n.op_type for n in qcdq.graph.node if Annotation.of(n) and Annotation.of(n).accumulator_kind != "dot") \
        == ["Add", "GlobalAveragePool"]
    rows = check_rows(annotated)
    assert all(r["status"] == "OK" and r["slack_bits"] == 0 for r in rows), rows
    kinds = sorted(s.kind for s in sum_nodes(annotated))
    assert kinds == ["add", "window_sum"] and unaligned_adds(annotated) == []
    checks = integer_check(annotated, run_qonnx(annotated, x.numpy()))
    assert len(checks) == 7 and all(c.overflow_free for c in checks)
    for r in rows:
        if r["op"] in ("Conv", "Gemm"):
            assert r["exact_bits"] <= P
    gap = next(s for s in sum_nodes(annotated) if s.kind == "window_sum")
    assert gap.terms == 9 and gap.exact_range() == (0, 9 * 15)  # 3x3 after the stride-2 conv, UINT4


def test_plain_models_keep_the_module_swap_and_per_layer_bits_are_refused_in_graph_mode():
    f = trained_tiny()
    x = torch.rand(8, 1, 6, 6)
    y = torch.zeros(8, dtype=torch.long)
    with pytest.raises(UnsupportedModuleError, match=r"BatchNorm2d.*graph mode does not support per-layer"):
        bundle_from_float(f, quant_cfg(layers={"fc": {"weight_bits": 3}}), calib_x=x, test_x=x, test_y=y)
    with pytest.raises(UnsupportedModuleError, match=r"BatchNorm2d"):
        bundle_from_float(f, quant_cfg(), calib_x=x, test_x=x, test_y=y, graph_mode=False)


def test_avg_pool_in_graph_mode_is_an_annotated_window_sum():
    class Pooled(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.relu, self.pool, self.fc = nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2), \
                nn.Linear(16, 3)

        def forward(self, x):
            return self.fc(torch.flatten(self.pool(self.relu(self.conv(x))), 1))

    torch.manual_seed(0)
    x = torch.rand(16, 1, 4, 4)
    bundle = bundle_from_float(Pooled().eval(), quant_cfg(), calib_x=x, test_x=x, test_y=torch.zeros(16, dtype=torch.long))
    bundle.quantize(quant_cfg(algorithm="rtn"), progress=False)
    annotated = export_model(bundle.quant_model, x)[0].transform(AnnotateAccumulators())
    (pool,) = sum_nodes(annotated)
    assert (pool.op, pool.terms, pool.exact_range(), pool.exact_datatype()) == ("AveragePool", 4, (0, 60), "UINT6")
    assert [r["status"] for r in check_rows(annotated)] == ["OK", "OK", "OK"]
    assert all(c.overflow_free for c in integer_check(annotated, run_qonnx(annotated, x.numpy())))
