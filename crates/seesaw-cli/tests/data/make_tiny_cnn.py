"""Writes tiny_cnn.onnx, the test model of `seesaw clips extract`: a 1x1 convolution from 3
colour channels to 4 features, then a global average pool and a flatten, so that its output
for one frame is W · (mean colour of the frame) + b, which a test can compute by hand.
Input `image`: [1, 3, H, W] floats (any H, W); output `features`: [1, 4].
Run with `python3 make_tiny_cnn.py` (needs the `onnx` package only)."""
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

W = np.array(
    [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.5, -0.25, 2.0]], dtype=np.float32
).reshape(4, 3, 1, 1)
B = np.array([0.0, 0.1, -0.2, 1.0], dtype=np.float32)

graph = helper.make_graph(
    [
        helper.make_node("Conv", ["image", "W", "B"], ["conv"], kernel_shape=[1, 1]),
        helper.make_node("GlobalAveragePool", ["conv"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["features"], axis=1),
    ],
    "tiny_cnn",
    [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, "H", "W"])],
    [helper.make_tensor_value_info("features", TensorProto.FLOAT, [1, 4])],
    initializer=[numpy_helper.from_array(W, "W"), numpy_helper.from_array(B, "B")],
)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
model.ir_version = 8
onnx.checker.check_model(model)
onnx.save(model, "tiny_cnn.onnx")
