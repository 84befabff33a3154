"""The dataflow node set: the ``axe_deploy.dataflow`` domain, its node names, and what
each node computes. The rewrites in this package produce these nodes; the executor
(:mod:`axe_deploy.dataflow.execute`) and the hardware bridge
(:mod:`axe_deploy.dataflow.hw_bridge`) read them.

After ``ConvertInputQuant`` and ``ConvertLayersToMVAU`` every tensor between dataflow
nodes holds integers (in float32 or int64 containers) and every node is in the
``axe_deploy.dataflow`` domain, or a shape-only op. The nodes:

- ``InputQuant(x)``: x_int = clip(round_half_even(x / scale), lo, hi), the integer input
  interface of the accelerator;
- ``MVAU(x, W[MW, MH], T[MH, n])`` (FINN's attribute names): acc = x·W in the register
  ``accDataType`` (from the annotation), out = #{thresholds <= acc}, or acc itself with
  ``noActivation = 1``; with ``tileSize`` T > 0 (multi-stage accumulation) every tile of
  T consecutive rows of W is summed in ``accDataType`` and the tile sums in
  ``outerAccDataType``; ``inputOrder`` (optional) permutes each input vector first,
  x'[j] = x[inputOrder[j]], so that the tiles see the annotation's [C, kh, kw] order;
- ``ChannelwiseAffine(acc, scale[MH], bias[MH])``: y = acc·scale + bias (along the last
  axis), the float output of a last layer;
- ``ConvolutionInputGenerator(x[n, H, W, C])`` (FINN's name; ``SlidingWindowLayer``):
  the K×K windows of every output pixel in (kh, kw, c) order, [n, OH, OW, K·K·C], with
  integer 0 in the ``Padding`` border;
- ``StreamingMaxPool(x[n, H, W, C])``: 2×2 max-pool, stride 2, floor mode (``MaxPoolLayer``).

Image tensors of the dataflow nodes are channels-last (NHWC). The conversions of Conv and
MaxPool wrap their dataflow nodes in ``Transpose`` nodes to and from the graph's NCHW, so
every intermediate graph computes the same function; the layout rewrites
(``RemoveInverseTransposes``, ``AbsorbTransposeIntoFlatten``,
``AbsorbTransposeIntoInputQuant``) then remove the transposes.
"""

DOMAIN = "axe_deploy.dataflow"
HW_OPS = ("ConvolutionInputGenerator", "MVAU", "StreamingMaxPool")  # the accelerator's layers
TO_NHWC = (0, 2, 3, 1)
TO_NCHW = (0, 3, 1, 2)
