import Engine
import Foundation
import TestSupport
import XCTest

@testable import KID

/// The forward-only NHWC kernels against direct Float64 loops, and the weight loading errors.
final class LayerTests: XCTestCase {
    override class func setUp() { Runtime.configure(threads: 2) }
    override class func tearDown() { Runtime.configure(threads: 1) }  // the thread count is process-wide

    /// A [n, h, w, c] map of uniform values in [-1, 1).
    func randomMap(_ n: Int, _ h: Int, _ w: Int, _ c: Int, seed: UInt64) -> FeatureMap {
        var rng = RandomGenerator(seed: seed)
        return FeatureMap(rng.uniformTensor([n, h, w, c], -1, 1))
    }

    /// relu(conv) by definition, NHWC in and out, in Float64.
    func referenceConv(_ x: FeatureMap, _ l: ConvLayer) -> [Double] {
        let (ho, wo) = l.outputSize(h: x.h, w: x.w)
        var out = [Double](repeating: 0, count: x.n * ho * wo * l.cout)
        for b in 0..<x.n {
            for oy in 0..<ho {
                for ox in 0..<wo {
                    for co in 0..<l.cout {
                        var s = Double(l.bias[co])
                        for ki in 0..<l.kh {
                            for kj in 0..<l.kw {
                                let y = oy * l.stride - l.padH + ki
                                let xx = ox * l.stride - l.padW + kj
                                guard y >= 0 && y < x.h && xx >= 0 && xx < x.w else { continue }
                                let src = x.at((b * x.h + y) * x.w + xx)
                                for ci in 0..<l.cin {
                                    s +=
                                        Double(l.weight[co * l.kh * l.kw * l.cin + (ki * l.kw + kj) * l.cin + ci])
                                        * Double(src[ci])
                                }
                            }
                        }
                        out[((b * ho + oy) * wo + ox) * l.cout + co] = max(0, s)
                    }
                }
            }
        }
        return out
    }

    func layer(cin: Int, cout: Int, kh: Int, kw: Int, stride: Int, padH: Int, padW: Int, seed: UInt64) -> ConvLayer {
        var rng = RandomGenerator(seed: seed)
        return ConvLayer(
            name: "test", cin: cin, cout: cout, kh: kh, kw: kw, stride: stride, padH: padH, padW: padW,
            weight: rng.uniformTensor([cout, kh * kw * cin], -0.5, 0.5), bias: rng.uniformTensor([cout], -0.3, 0.3))
    }

    /// Every conv geometry of the network, on a channel slice of a wider map (as the towers read the stacked
    /// entry convs), and a 1×1 conv whose output is split into two slices of a wider map.
    func testConvGeometriesOnSlices() {
        let base = randomMap(2, 9, 11, 7, seed: 1)
        let x = base.slice(2, 4)
        let geometries = [
            (3, 3, 2, 0, 0), (3, 3, 1, 1, 1), (5, 5, 1, 2, 2), (1, 7, 1, 0, 3), (7, 1, 1, 3, 0),
            (1, 3, 1, 0, 1), (3, 1, 1, 1, 0), (1, 1, 1, 0, 0), (3, 3, 1, 0, 0),
        ]
        for (i, (kh, kw, s, ph, pw)) in geometries.enumerated() {
            let l = layer(cin: 4, cout: 5, kh: kh, kw: kw, stride: s, padH: ph, padW: pw, seed: UInt64(10 + i))
            let y = l(x)
            assertClose(
                y.tensor.array.map(Double.init), referenceConv(x, l), atol: 1e-5, rtol: 1e-5,
                "\(kh)x\(kw) stride \(s) pad (\(ph), \(pw))")
        }
        // contiguous 1×1 (the direct path), output split 3 + 2 into slices of a 9-channel map
        let full = randomMap(2, 9, 11, 4, seed: 2)
        let l = layer(cin: 4, cout: 5, kh: 1, kw: 1, stride: 1, padH: 0, padW: 0, seed: 3)
        let wide = FeatureMap(n: 2, h: 9, w: 11, channels: 9)
        wide.tensor.fill(-7)
        l.forward(full, into: [wide.slice(1, 3), wide.slice(6, 2)])
        let ref = referenceConv(full, l)
        for p in 0..<(2 * 9 * 11) {
            let d = wide.at(p)
            for j in 0..<3 { XCTAssertEqual(Double(d[1 + j]), ref[p * 5 + j], accuracy: 1e-5) }
            for j in 0..<2 { XCTAssertEqual(Double(d[6 + j]), ref[p * 5 + 3 + j], accuracy: 1e-5) }
            for j in [0, 4, 5, 8] { XCTAssertEqual(d[j], -7, "untouched channel \(j)") }
        }
    }

    /// Max pool 3/2 (valid), max pool 3/1 pad 1 (padding never wins: inputs all negative), average pool 3/1 pad 1
    /// with the divisor counting only in-image pixels (corner: 4, edge: 6, interior: 9).
    func testPools() {
        let x = randomMap(1, 7, 6, 3, seed: 5)
        for p in 0..<x.pixels { for j in 0..<3 { x.at(p)[j] -= 2 } }  // all values in [-3, -1)
        func v(_ y: Int, _ xx: Int, _ c: Int) -> Float { x.at(y * 6 + xx)[c] }
        let m2 = x.pooled(.max, k: 3, stride: 2, pad: 0)
        XCTAssertEqual([m2.h, m2.w], [3, 2])
        let m1 = x.pooled(.max, k: 3, stride: 1, pad: 1)
        let a1 = x.pooled(.averageExcludingPadding, k: 3, stride: 1, pad: 1)
        for c in 0..<3 {
            for oy in 0..<3 {
                for ox in 0..<2 {
                    var m = -Float.infinity
                    for dy in 0..<3 { for dx in 0..<3 { m = max(m, v(oy * 2 + dy, ox * 2 + dx, c)) } }
                    XCTAssertEqual(m2.at(oy * 2 + ox)[c], m)
                }
            }
            for oy in 0..<7 {
                for ox in 0..<6 {
                    var m = -Float.infinity
                    var s = 0.0
                    var n = 0.0
                    for y in max(0, oy - 1)...min(6, oy + 1) {
                        for xx in max(0, ox - 1)...min(5, ox + 1) {
                            m = max(m, v(y, xx, c))
                            s += Double(v(y, xx, c))
                            n += 1
                        }
                    }
                    XCTAssertEqual(m1.at(oy * 6 + ox)[c], m)
                    XCTAssertEqual(Double(a1.at(oy * 6 + ox)[c]), s / n, accuracy: 1e-6)
                }
            }
        }
        let g = x.globalAverage()
        XCTAssertEqual(g.shape, [1, 3])
        XCTAssertEqual(Double(g[1]), (0..<42).reduce(0.0) { $0 + Double(x.at($1)[1]) } / 42, accuracy: 1e-6)
    }

    /// Batch-norm folding: relu(conv(x, W') + b') equals relu((conv(x, W) − mean)/sqrt(var + eps) + beta).
    func testBatchNormFolding() throws {
        var rng = RandomGenerator(seed: 9)
        let w = rng.uniformTensor([2, 3, 1, 2], -1, 1)  // OIHW, a 1×2 kernel: checks the (ki, kj, ci) reordering
        let beta = Tensor(shape: [2], [0.1, -0.2])
        let mean = Tensor(shape: [2], [0.3, -0.1])
        let v = Tensor(shape: [2], [0.5, 2])
        let data = try SafeTensorsFile.encode([("c.weight", w), ("c.beta", beta), ("c.mean", mean), ("c.var", v)])
        let file = try SafeTensorsFile(data: data, path: "<memory>")
        let l = try ConvLayer.load(file, InceptionArchitecture.conv("c", 1, 2, pad: (0, 1)), eps: 0.001)
        let x = randomMap(1, 2, 3, 3, seed: 4)
        let y = l(x)
        XCTAssertEqual([y.h, y.w, y.channels], [2, 4, 2])
        for oy in 0..<2 {
            for ox in 0..<4 {
                for co in 0..<2 {
                    var s = 0.0
                    for ci in 0..<3 {
                        for kj in 0..<2 {
                            let xx = ox - 1 + kj
                            guard xx >= 0 && xx < 3 else { continue }
                            s += Double(w[(co * 3 + ci) * 2 + kj]) * Double(x.at(oy * 3 + xx)[ci])
                        }
                    }
                    let bn = (s - Double(mean[co])) / (Double(v[co]) + 0.001).squareRoot() + Double(beta[co])
                    XCTAssertEqual(Double(y.at(oy * 4 + ox)[co]), max(0, bn), accuracy: 1e-5)
                }
            }
        }
    }

    /// A missing file names itself and the command that creates it; a file of another network is rejected.
    func testWeightErrors() throws {
        let missing = NSTemporaryDirectory() + "no-such-dir/fid.safetensors"
        XCTAssertThrowsError(try FIDInceptionV3(weightsPath: missing)) { e in
            guard case KIDError.missingWeights = e else { return XCTFail("\(e)") }
            XCTAssertTrue("\(e)".contains(missing))
            XCTAssertTrue("\(e)".contains("Scripts/convert_inception.py"))
        }
        // a truncated or corrupt file: the weights' own error (the data status 65), naming the file once
        let corrupt = NSTemporaryDirectory() + "f2w-corrupt-fid-\(getpid()).safetensors"
        try Data("not safetensors".utf8).write(to: URL(fileURLWithPath: corrupt))
        defer { try? FileManager.default.removeItem(atPath: corrupt) }
        XCTAssertThrowsError(try FIDInceptionV3(weightsPath: corrupt)) { e in
            guard case KIDError.badWeights(let path, _) = e else { return XCTFail("\(e)") }
            XCTAssertEqual(path, corrupt)
            XCTAssertEqual("\(e)".components(separatedBy: corrupt).count, 2, "\(e)")
        }
        let other = try SafeTensorsFile(
            data: SafeTensorsFile.encode([("conv.weight", Tensor(zeros: [32, 3, 3, 3]))]), path: "other")
        XCTAssertThrowsError(try FIDInceptionV3(file: other)) { e in
            XCTAssertTrue("\(e)".contains("no tensor conv.beta"), "\(e)")
        }
        // wrong kernel shape
        let f = try KIDFixtures.load("inception_random")
        var tensors = try f.names.map { ($0, try f[$0]) }
        if let i = tensors.firstIndex(where: { $0.0 == "mixed_4.tower.conv_1.weight" }) {
            let s = tensors[i].1.shape
            tensors[i].1 = Tensor(zeros: [s[0], s[1], 7, 1])
        }
        let bad = try SafeTensorsFile(
            data: SafeTensorsFile.encode(tensors, metadata: ["format": "fid-inception-v3"]), path: "bad")
        XCTAssertThrowsError(try FIDInceptionV3(file: bad)) { e in
            XCTAssertTrue("\(e)".contains("mixed_4.tower.conv_1.weight"), "\(e)")
        }
    }
}
