"""Floating-point operations of a serving function, counted op by op over its graph at a fixed batch size.

Why our own count.  TensorFlow's profiler (`tf.compat.v1.profiler`,
`float_operation`) sums per-op statistics registered in Python (TF 2.21),
and none is registered for `Einsum` (DAGFM's propagation, CIN's feature
maps) nor for the activations (`Sigmoid`, `Relu`, `LeakyRelu`, `Tanh`,
`Exp`); and it counts the ops of the graph it is given, where a SavedModel
signature's graph is one call op into the model's function.  It would
undercount exactly the interaction models whose cost KD-DAGFM compares
(its Table 3).  So the function is
frozen and inlined (`convert_variables_to_constants_v2`: one flat graph,
variables as constants), re-imported with every batch dimension set
(shape inference then gives each op static shapes), and each op whose output
is floating point is counted by its type:

- `MatMul`: 2 m k n; `BatchMatMul*`: 2 m k n per matrix of the batch;
  `Conv2D`: 2 k_h k_w c_in per output element (a multiply-add is 2 FLOPs);
- `Einsum`: 2 x the product of every index's size when an index is summed
  over, the product (one multiply per output element) when none is;
- element-wise ops (`Add`, `Mul`, `BiasAdd`, `Sigmoid`, `LeakyRelu`, ...):
  1 per output element; `AddN`: (inputs - 1) per output element;
  `Softmax`: 3 per element (exp, sum, divide); fused batch norm: 2;
- reductions (`Sum`, `Mean`, `Max`, ...): 1 per input element;
- data movement (gathers, reshapes, concatenations, casts, selects, top-k)
  and every op with an integer, string or boolean output (hashing, vocabulary
  lookups, bucketizing, comparisons): 0.

A floating-point op of any other type is not guessed: it is listed in
`uncounted`, as is a costed op whose shapes stay unknown, so a report says
what its count leaves out.  Per example is the difference of the counts at
batch 2 and batch 1: work that does not depend on the batch (DAGFM masking
its edge weights, once per call) is `per_call`, not charged to one example.
"""
from __future__ import annotations

import collections
import dataclasses
import math

from pfd_tf._keras import tf

ELEMENTWISE = frozenset({
    "Add", "AddV2", "Sub", "Mul", "RealDiv", "Div", "DivNoNan", "MulNoNan", "Maximum", "Minimum",
    "SquaredDifference", "Pow", "BiasAdd", "FloorDiv", "FloorMod", "Mod", "Neg", "Abs", "Square", "Sqrt", "Rsqrt",
    "Reciprocal", "Inv", "Exp", "Expm1", "Log", "Log1p", "Sigmoid", "Tanh", "Relu", "Relu6", "LeakyRelu", "Elu",
    "Selu", "Softplus", "Softsign", "Erf", "Sign", "Floor", "Ceil", "Round", "Rint", "Sin", "Cos", "ClipByValue"})
REDUCTIONS = frozenset({"Sum", "Mean", "Prod", "Max", "Min", "EuclideanNorm"})
PER_ELEMENT = {"Softmax": 3, "LogSoftmax": 3, "FusedBatchNorm": 2, "FusedBatchNormV2": 2, "FusedBatchNormV3": 2}
FREE = frozenset({
    "Identity", "IdentityN", "Const", "Placeholder", "PlaceholderWithDefault", "Reshape", "Squeeze", "ExpandDims",
    "ConcatV2", "Concat", "Pack", "Unpack", "GatherV2", "Gather", "GatherNd", "ResourceGather", "StridedSlice",
    "Slice", "Split", "SplitV", "Transpose", "Tile", "BroadcastTo", "Fill", "ZerosLike", "OnesLike", "Cast",
    "Select", "SelectV2", "Snapshot", "StopGradient", "PreventGradient", "EnsureShape", "CheckNumerics", "TopKV2",
    "Pad", "PadV2", "MirrorPad", "ReverseV2", "Bitcast", "DynamicStitch", "ScatterNd", "TensorScatterUpdate",
    "LookupTableFindV2", "ReadVariableOp", "NoOp"})


@dataclasses.dataclass(frozen=True)
class FlopCount:
    """FLOPs of one call at one batch size; `by_op`: FLOPs per op type; `uncounted`: op type -> ops left out."""

    batch: int
    total: int
    by_op: dict[str, int]
    uncounted: dict[str, int]


def count_flops(function, batch: int) -> FlopCount:
    """FLOPs of one call of the concrete `function` on a batch of `batch` rows (every input's first dimension)."""
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    graph_def = convert_variables_to_constants_v2(function).graph.as_graph_def()
    graph = tf.Graph()
    with graph.as_default():
        inputs = {}
        for node in graph_def.node:
            dims = [d.size for d in node.attr["shape"].shape.dim] if node.op == "Placeholder" else []
            if dims and dims[0] in (-1, batch):  # a batched input (the resource of a lookup table is not)
                inputs[f"{node.name}:0"] = tf.compat.v1.placeholder(
                    tf.dtypes.as_dtype(node.attr["dtype"].type), [batch] + [d if d >= 0 else None for d in dims[1:]],
                    name=f"{node.name}_batch")
        tf.graph_util.import_graph_def(graph_def, input_map=inputs, name="")
    by_op: dict[str, int] = collections.Counter()
    uncounted: dict[str, int] = collections.Counter()
    for op in graph.get_operations():
        if not op.outputs or not op.outputs[0].dtype.is_floating or op.type in FREE:
            continue
        flops = op_flops(op)
        if flops is None:
            uncounted[op.type] += 1
        else:
            by_op[op.type] += flops
    return FlopCount(batch, sum(by_op.values()), dict(by_op), dict(uncounted))


def serving_flops(function) -> dict:
    """`per_example` (count at batch 2 minus batch 1), `per_call` (the rest of batch 1), `batch_1`, `by_op`
    (per example), `uncounted` (op type -> ops left out at batch 1)."""
    one, two = count_flops(function, 1), count_flops(function, 2)
    per_example = two.total - one.total
    by_op = {name: two.by_op.get(name, 0) - one.by_op.get(name, 0) for name in sorted(two.by_op)}
    return {"per_example": per_example, "per_call": one.total - per_example, "batch_1": one.total,
            "by_op": {name: value for name, value in by_op.items() if value}, "uncounted": one.uncounted}


def op_flops(op) -> int | None:
    """FLOPs of one op of a float output (by the rules of this module's docstring); None when its type is
    not known or the shapes it needs are not static.

    An input's dimension that shape inference left unknown (one behind a
    vocabulary lookup, say) is taken from the other operand when that one
    fixes it: a product's inner size from either factor.
    """
    out = op.outputs[0].shape
    shapes = [t.shape for t in op.inputs]
    if op.type in REDUCTIONS:
        return shapes[0].num_elements() if shapes[0].is_fully_defined() else None
    if not out.is_fully_defined():
        return None
    elements = out.num_elements()
    if op.type in ELEMENTWISE:
        return elements
    if op.type in PER_ELEMENT:
        return PER_ELEMENT[op.type] * elements
    if op.type == "AddN":
        return (len(op.inputs) - 1) * elements
    if op.type == "MatMul":
        k = _known(shapes[0][0 if op.get_attr("transpose_a") else 1], shapes[1][1 if op.get_attr("transpose_b") else 0])
        return None if k is None else 2 * elements * k
    if op.type in ("BatchMatMul", "BatchMatMulV2", "BatchMatMulV3"):
        k = _known(shapes[0][-2 if op.get_attr("adj_x") else -1], shapes[1][-1 if op.get_attr("adj_y") else -2])
        return None if k is None else 2 * elements * k
    if op.type == "Conv2D":
        return 2 * elements * shapes[1][:3].num_elements() if shapes[1].is_fully_defined() else None
    if op.type == "Einsum":
        return einsum_flops(op.get_attr("equation").decode(), [s.as_list() for s in shapes], out.as_list())
    return None


def einsum_flops(equation: str, shapes: list[list[int | None]], output_shape: list[int] | None = None) -> int | None:
    """FLOPs of `tf.einsum(equation, *operands of shapes)`; None for an equation with an ellipsis or an index
    whose size no operand (nor the output) fixes."""
    if "..." in equation:
        return None
    inputs, output = equation.replace(" ", "").split("->")
    sizes: dict[str, int | None] = {}
    for labels, shape in zip(inputs.split(",") + [output], shapes + [output_shape or [None] * len(output)]):
        for label, size in zip(labels, shape):
            if size is not None:  # a broadcast 1 takes the other operand's size
                sizes[label] = max(sizes.get(label) or 1, int(size))
            else:
                sizes.setdefault(label, None)
    if any(size is None for size in sizes.values()):
        return None
    products = math.prod(sizes.values())
    summed = set(sizes) - set(output)
    if len(shapes) == 1:
        return products if summed else 0  # a reduction, or a transpose
    return 2 * products if summed else products


def _known(*sizes) -> int | None:
    """The first of `sizes` shape inference fixed."""
    return next((int(size) for size in sizes if size is not None), None)
