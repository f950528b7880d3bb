"""check_model.py: Debian's python3-onnx on a cltrain ONNX export.

    python3 check_model.py MODEL.onnx NPY_DIR ACTIVATION HIDDEN_LAYERS

The full checker (with shape inference) must accept the model; it must be IR version 8 with
opset 13, take pixels float32 [N, inputs] and give probabilities float32 [N, classes]; its
nodes must be Gemm, the activation, ..., Gemm, Softmax; its weights must equal bit for bit the
--export-npy arrays of the same run. Exit 0 when all hold, 1 otherwise."""
import sys

import numpy as np
import onnx
from onnx import numpy_helper


def shape(value_info):
    dims = value_info.type.tensor_type.shape.dim
    return [d.dim_param if d.dim_param else d.dim_value for d in dims]


def main():
    path, npy_dir, act, hidden = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    problems = []
    if model.ir_version != 8:
        problems.append(f"IR version {model.ir_version}, expected 8")
    opsets = {o.domain: o.version for o in model.opset_import}
    if opsets != {"": 13}:
        problems.append(f"opsets {opsets}, expected the default domain at 13")
    g = model.graph
    weights = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    w1 = np.load(f"{npy_dir}/W1.npy")
    wl = np.load(f"{npy_dir}/W{hidden + 1}.npy")
    inputs, classes = w1.shape[1], wl.shape[0]
    if [i.name for i in g.input] != ["pixels"] or shape(g.input[0]) != ["N", inputs]:
        problems.append(f"input {[(i.name, shape(i)) for i in g.input]}, expected pixels [N, {inputs}]")
    if g.input and g.input[0].type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
        problems.append("input is not float32")
    if [o.name for o in g.output] != ["probabilities"] or shape(g.output[0]) != ["N", classes]:
        problems.append(f"output {[(o.name, shape(o)) for o in g.output]}, expected probabilities [N, {classes}]")
    op = {"relu": "Relu", "sigmoid": "Sigmoid"}[act]
    expect = ["Gemm", op] * hidden + ["Gemm", "Softmax"]
    got = [n.op_type for n in g.node]
    if got != expect:
        problems.append(f"nodes {got}, expected {expect}")
    for layer in range(1, hidden + 2):
        for name in (f"W{layer}", f"b{layer}"):
            ref = np.load(f"{npy_dir}/{name}.npy")
            mine = weights.get(name)
            if mine is None or mine.dtype != np.float32 or mine.shape != ref.shape or \
                    mine.tobytes() != ref.tobytes():
                problems.append(f"initializer {name} differs from {npy_dir}/{name}.npy")
    # Shape inference must carry the batch dimension through to the output.
    inferred = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    out = [v for v in inferred.graph.output if v.name == "probabilities"]
    if not out or shape(out[0]) != ["N", classes]:
        problems.append("shape inference does not give probabilities [N, classes]")
    for p in problems:
        print(f"check_model: {path}: {p}", file=sys.stderr)
    if problems:
        return 1
    print(f"{path}: onnx {onnx.__version__} checker (full_check) accepts it: IR {model.ir_version}, "
          f"opset {opsets['']}, {' '.join(got)}, [N, {inputs}] -> [N, {classes}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
