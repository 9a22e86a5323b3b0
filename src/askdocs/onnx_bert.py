"""A BERT encoder with mean pooling, written as an ONNX graph around given weights.

Weights are the `BertModel` state dict of a sentence-transformers checkpoint (names such as
`encoder.layer.0.attention.self.query.weight`). The graph takes `input_ids` and
`attention_mask` (int64, shape [batch, length]) and returns `embedding` [batch, hidden]:
the mean of the last hidden states over real tokens, L2-normalised.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


class _GraphBuilder:
    def __init__(self, weights: Mapping[str, np.ndarray]) -> None:
        self.weights = weights
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []

    def const(self, name: str, value: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def op(self, op_type: str, inputs: list[str], **attrs: object) -> str:
        out = f"{op_type.lower()}_{len(self.nodes)}"
        self.nodes.append(helper.make_node(op_type, inputs, [out], **attrs))
        return out

    def linear(self, x: str, prefix: str) -> str:
        w = self.const(prefix + ".wT", self.weights[prefix + ".weight"].T.astype(np.float32))
        return self.op(
            "Add",
            [self.op("MatMul", [x, w]), self.const(prefix + ".b", self.weights[prefix + ".bias"])],
        )

    def layer_norm(self, x: str, prefix: str, eps: float) -> str:
        gamma = self.const(prefix + ".gamma", self.weights[prefix + ".weight"])
        beta = self.const(prefix + ".beta", self.weights[prefix + ".bias"])
        return self.op("LayerNormalization", [x, gamma, beta], epsilon=eps, axis=-1)

    def scalar(self, name: str, value: float) -> str:
        return self.const(name, np.array(value, dtype=np.float32))


def _attention(g: _GraphBuilder, x: str, prefix: str, bias: str, heads: int, hidden: int) -> str:
    head_dim = hidden // heads
    split = g.const(prefix + "split", np.array([0, 0, heads, head_dim], dtype=np.int64))
    merge = g.const(prefix + "merge", np.array([0, 0, hidden], dtype=np.int64))

    def project(name: str, perm: list[int]) -> str:
        y = g.op("Reshape", [g.linear(x, f"{prefix}attention.self.{name}"), split])
        return g.op("Transpose", [y], perm=perm)

    q, k, v = (
        project("query", [0, 2, 1, 3]),
        project("key", [0, 2, 3, 1]),
        project("value", [0, 2, 1, 3]),
    )
    scores = g.op("Mul", [g.op("MatMul", [q, k]), g.scalar(prefix + "scale", head_dim**-0.5)])
    probs = g.op("Softmax", [g.op("Add", [scores, bias])], axis=-1)
    context = g.op("Transpose", [g.op("MatMul", [probs, v])], perm=[0, 2, 1, 3])
    return g.linear(g.op("Reshape", [context, merge]), f"{prefix}attention.output.dense")


def _gelu(g: _GraphBuilder, x: str, prefix: str) -> str:
    """Exact (erf) GELU, as BERT uses; ORT fuses this pattern into one kernel."""
    inner = g.op("Erf", [g.op("Div", [x, g.scalar(prefix + "sqrt2", float(np.sqrt(2.0)))])])
    gate = g.op("Add", [inner, g.scalar(prefix + "one", 1.0)])
    return g.op("Mul", [g.op("Mul", [x, g.scalar(prefix + "half", 0.5)]), gate])


def bert_graph(
    weights: Mapping[str, np.ndarray], *, layers: int = 6, heads: int = 12, eps: float = 1e-12
) -> onnx.ModelProto:
    """The ONNX model for a BERT encoder + mean pooling + L2 normalisation."""
    weights = {k.removeprefix("bert."): v for k, v in weights.items()}
    g = _GraphBuilder(weights)
    hidden = weights["embeddings.word_embeddings.weight"].shape[1]
    length = g.op("Shape", ["input_ids"], start=1, end=2)
    positions = g.op(
        "Slice",
        [
            g.const("pos_table", weights["embeddings.position_embeddings.weight"]),
            g.const("zero", np.array([0], dtype=np.int64)),
            length,
            g.const("axis0", np.array([0], dtype=np.int64)),
        ],
    )
    words = g.op(
        "Gather", [g.const("word_table", weights["embeddings.word_embeddings.weight"]), "input_ids"]
    )
    token_type = g.const("type0", weights["embeddings.token_type_embeddings.weight"][0])
    x = g.op("Add", [g.op("Add", [words, positions]), token_type])
    x = g.layer_norm(x, "embeddings.LayerNorm", eps)

    mask = g.op("Cast", ["attention_mask"], to=TensorProto.FLOAT)
    mask4 = g.op("Unsqueeze", [mask, g.const("axes12", np.array([1, 2], dtype=np.int64))])
    # Padding gets a large negative score before softmax, so it receives no attention.
    bias = g.op("Mul", [g.op("Sub", [g.scalar("one", 1.0), mask4]), g.scalar("neg", -1e4)])
    for i in range(layers):
        p = f"encoder.layer.{i}."
        x = g.layer_norm(
            g.op("Add", [x, _attention(g, x, p, bias, heads, hidden)]),
            p + "attention.output.LayerNorm",
            eps,
        )
        h = g.linear(_gelu(g, g.linear(x, p + "intermediate.dense"), p), p + "output.dense")
        x = g.layer_norm(g.op("Add", [x, h]), p + "output.LayerNorm", eps)

    mask3 = g.op("Unsqueeze", [mask, g.const("axes2", np.array([2], dtype=np.int64))])
    axis1 = g.const("axis1", np.array([1], dtype=np.int64))
    summed = g.op("ReduceSum", [g.op("Mul", [x, mask3]), axis1], keepdims=0)
    mean = g.op("Div", [summed, g.op("ReduceSum", [mask, axis1], keepdims=1)])
    g.nodes.append(helper.make_node("LpNormalization", [mean], ["embedding"], axis=-1, p=2))
    graph = helper.make_graph(
        g.nodes,
        "sentence_encoder",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "length"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "length"]),
        ],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", hidden])],
        g.initializers,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
