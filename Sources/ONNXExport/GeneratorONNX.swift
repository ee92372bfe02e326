import Engine
import UGATIT

/// The U-GAT-IT generator (spec A.2, `ResnetGenerator.callAsFunction`) as an ONNX graph, opset 17.
///
/// Input `image` [N, 3, S, S] in [−1, 1]; outputs `translation` [N, 3, S, S] in [−1, 1] (tanh) and, unless left out,
/// `cam_heatmap` [N, 1, S/4, S/4] (the channel sum of the CAM feature map, as translate's heatmap). N is symbolic.
///
/// ILN and AdaILN are composed from ReduceMean/Sub/Mul/Div/Sqrt: they use the unbiased variance (torch.var's default,
/// as the original does), which ONNX's normalization operators do not. Plain instance norm (biased, eps 1e-5) is
/// ONNX's InstanceNormalization with unit scale and zero bias. Reflection padding is a Pad node before each Conv.
public enum GeneratorONNX {
    public static let opset = 17

    /// Builds the graph of `g` with its current weights (eval mode: the generator has no train-time behaviour).
    public static func graph(_ g: ResnetGenerator, heatmap: Bool = true) -> ONNXGraph {
        var b = Builder(size: g.config.imageSize)
        var x = "image"
        for conv in g.down { x = b.relu(b.instanceNorm(b.conv(x, conv))) }
        for (c1, c2) in g.encoderBlocks {
            let y = b.instanceNorm(b.conv(b.relu(b.instanceNorm(b.conv(x, c1))), c2))
            x = b.g.op("Add", [x, y], name: "residual")
        }
        // CAM (spec A.2 steps 1-4): x re-weighted channel-wise by the gap and gmp classifier weights, concatenated.
        let d = g.gapFC.weight.shape[1]
        let gapW = b.g.weight(g.gapFC.weight.name, g.gapFC.weight.value)
        let gmpW = b.g.weight(g.gmpFC.weight.name, g.gmpFC.weight.value)
        let channelShape = b.g.ints([1, d, 1, 1], hint: "channel_shape")
        let gapFeat = b.g.op("Mul", [x, b.g.op("Reshape", [gapW, channelShape])], name: "gap_feature")
        let gmpFeat = b.g.op("Mul", [x, b.g.op("Reshape", [gmpW, channelShape])], name: "gmp_feature")
        x = b.g.op("Concat", [gapFeat, gmpFeat], [.int("axis", 1)], name: "cam")
        x = b.relu(b.conv(x, g.conv1x1))
        if heatmap {
            b.g.op("ReduceSum", [x, b.g.ints([1], hint: "axes")], [.int("keepdims", 1)], output: "cam_heatmap")
        }
        var h = g.config.light ? b.g.op("GlobalAveragePool", [x]) : x
        h = b.g.op("Flatten", [h], [.int("axis", 1)], name: "fc_input")
        for layer in g.fc { h = b.relu(b.linear(h, layer)) }
        let gamma = b.linear(h, g.gamma)
        let beta = b.linear(h, g.beta)
        // [N, C] -> [N, C, 1, 1] once, shared by every adaILN
        let spatial = b.g.ints([2, 3], hint: "axes")
        let gamma4 = b.g.op("Unsqueeze", [gamma, spatial], name: "gamma")
        let beta4 = b.g.op("Unsqueeze", [beta, spatial], name: "beta")
        for (c1, n1, c2, n2) in g.decoderBlocks {
            let y = b.relu(b.iln(b.conv(x, c1), rho: n1.rho, gamma: gamma4, beta: beta4))
            x = b.g.op("Add", [x, b.iln(b.conv(y, c2), rho: n2.rho, gamma: gamma4, beta: beta4)], name: "residual")
        }
        for (conv, norm) in g.up {
            b.size *= 2
            let scales = b.g.constant([1, 1, 2, 2], shape: [4], hint: "scales")
            let up = b.g.op(
                "Resize", [x, "", scales],
                [
                    .string("mode", "nearest"), .string("coordinate_transformation_mode", "asymmetric"),
                    .string("nearest_mode", "floor"),
                ], name: "upsample")
            let gm = b.g.weight(norm.gamma.name, norm.gamma.value)
            let bt = b.g.weight(norm.beta.name, norm.beta.value)
            x = b.relu(b.iln(b.conv(up, conv), rho: norm.rho, gamma: gm, beta: bt))
        }
        b.g.op("Tanh", [b.conv(x, g.output)], output: "translation")
        return b.g
    }

    /// The graph's inputs and outputs for `ONNXGraph.write`.
    public static func signature(_ g: ResnetGenerator, heatmap: Bool = true) -> (
        inputs: [ONNXGraph.ValueInfo], outputs: [ONNXGraph.ValueInfo]
    ) {
        let s = g.config.imageSize
        let image: [ONNXGraph.ValueInfo.Dimension] = [.symbolic("N"), .fixed(3), .fixed(s), .fixed(s)]
        var outputs = [ONNXGraph.ValueInfo("translation", image)]
        if heatmap {
            outputs.append(.init("cam_heatmap", [.symbolic("N"), .fixed(1), .fixed(s / 4), .fixed(s / 4)]))
        }
        return ([.init("image", image)], outputs)
    }

    /// Emits the layers; `size` tracks the square feature map's side for the unbiased-variance factors.
    struct Builder {
        var g = ONNXGraph()
        var size: Int

        init(size: Int) {
            self.size = size / 4  // the decoder runs at S/4
        }

        mutating func relu(_ x: String) -> String { g.op("Relu", [x]) }

        /// Conv2d with its padding: reflection as a Pad node (opset ≥ 11 takes pads as an input), zeros as `pads`.
        mutating func conv(_ x: String, _ c: Conv) -> String {
            let w = g.weight(c.weight.name, c.weight.value)
            let k = c.weight.shape[2]
            var input = x
            var pads = [0, 0, 0, 0]
            if c.padding > 0 {
                let p = c.padding
                if c.mode == .reflect {
                    input = g.op(
                        "Pad", [x, g.ints([0, 0, p, p, 0, 0, p, p], hint: "pads")], [.string("mode", "reflect")],
                        name: "reflect_pad")
                } else {
                    pads = [p, p, p, p]
                }
            }
            var inputs = [input, w]
            if let bias = c.bias { inputs.append(g.weight(bias.name, bias.value)) }
            return g.op(
                "Conv", inputs,
                [.ints("kernel_shape", [k, k]), .ints("strides", [c.stride, c.stride]), .ints("pads", pads)],
                name: "conv")
        }

        /// y = x·Wᵀ (+ b): Gemm with transB.
        mutating func linear(_ x: String, _ l: Linear) -> String {
            var inputs = [x, g.weight(l.weight.name, l.weight.value)]
            if let bias = l.bias { inputs.append(g.weight(bias.name, bias.value)) }
            return g.op("Gemm", inputs, [.int("transB", 1)], name: "linear")
        }

        /// Instance norm without affine (biased variance, eps 1e-5), as `Tape.instanceNorm`.
        mutating func instanceNorm(_ x: String) -> String {
            let c = channels(of: x)
            let one = g.constant([Float](repeating: 1, count: c), shape: [c], hint: "ones")
            let zero = g.constant([Float](repeating: 0, count: c), shape: [c], hint: "zeros")
            return g.op("InstanceNormalization", [x, one, zero], [.float("epsilon", 1e-5)], name: "instance_norm")
        }

        /// x̂ over `axes` with the unbiased variance Σ(x − μ)²/(M − 1) (spec A.1; eps 1e-5).
        mutating func normalizedUnbiased(_ x: String, axes: [Int], count m: Int) -> String {
            let mean = g.op("ReduceMean", [x], [.ints("axes", axes), .int("keepdims", 1)], name: "mean")
            let dev = g.op("Sub", [x, mean], name: "deviation")
            let sq = g.op("ReduceMean", [g.op("Mul", [dev, dev])], [.ints("axes", axes), .int("keepdims", 1)])
            let factor = g.constant([Float(Double(m) / Double(m - 1))], shape: [], hint: "bessel")
            let variance = g.op("Mul", [sq, factor], name: "variance")
            let eps = g.constant([1e-5], shape: [], hint: "eps")
            return g.op("Div", [dev, g.op("Sqrt", [g.op("Add", [variance, eps])])], name: "normalized")
        }

        /// ILN / adaILN (spec A.1): (ρ·x̂_IN + (1 − ρ)·x̂_LN)·γ + β, ρ [1, C, 1, 1]; γ, β broadcast from
        /// [1, C, 1, 1] (ILN) or [N, C, 1, 1] (adaILN).
        mutating func iln(_ x: String, rho: Parameter, gamma: String, beta: String) -> String {
            let c = rho.shape[1]
            let m = size * size
            let xIn = normalizedUnbiased(x, axes: [2, 3], count: m)
            let xLn = normalizedUnbiased(x, axes: [1, 2, 3], count: c * m)
            let r = g.weight(rho.name, rho.value)
            let oneMinus = g.op("Sub", [g.constant([1], shape: [], hint: "one"), r], name: "one_minus_rho")
            let mixed = g.op("Add", [g.op("Mul", [r, xIn]), g.op("Mul", [oneMinus, xLn])], name: "iln")
            return g.op("Add", [g.op("Mul", [mixed, gamma]), beta], name: "affine")
        }

        /// Channels of a value: every value the generator normalises comes from a Conv with a known weight.
        func channels(of x: String) -> Int {
            guard let n = g.nodes.last(where: { $0.outputs.contains(x) }), n.op == "Conv",
                let w = g.initializers.first(where: { $0.name == n.inputs[1] })
            else { preconditionFailure("instance norm of \(x): not a Conv output") }
            return w.shape[0]
        }
    }
}
