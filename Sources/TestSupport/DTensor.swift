import Engine

/// A Float64 tensor (row-major, like `Tensor`) for the naive reference implementations in `Ref`.
/// A plain value type: references are written with obvious loops and never share code with the engine.
public struct DTensor: Equatable, CustomStringConvertible {
    public var shape: [Int]
    public var data: [Double]

    public init(shape: [Int], _ data: [Double]) {
        precondition(shape.reduce(1, *) == data.count, "DTensor: \(data.count) values for shape \(shape)")
        self.shape = shape
        self.data = data
    }

    public init(zeros shape: [Int]) { self.init(shape: shape, [Double](repeating: 0, count: shape.reduce(1, *))) }

    /// The exact values of a float32 tensor, widened to Float64.
    public init(_ t: Tensor) { self.init(shape: t.shape, t.array.map(Double.init)) }

    public var count: Int { data.count }
    public var rank: Int { shape.count }

    public subscript(i: Int) -> Double {
        get { data[i] }
        set { data[i] = newValue }
    }

    /// Element [a, b, c, d] of a rank-4 tensor.
    public subscript(a: Int, b: Int, c: Int, d: Int) -> Double {
        get { data[((a * shape[1] + b) * shape[2] + c) * shape[3] + d] }
        set { data[((a * shape[1] + b) * shape[2] + c) * shape[3] + d] = newValue }
    }

    /// Rounded to float32.
    public var tensor: Tensor { Tensor(shape: shape, data.map { Float($0) }) }

    /// Same data, new shape.
    public func reshaped(_ s: [Int]) -> DTensor { DTensor(shape: s, data) }

    public var description: String {
        let head = data.prefix(8).map { String($0) }.joined(separator: ", ")
        return "DTensor(\(shape): [\(head)\(count > 8 ? ", …" : "")])"
    }
}

extension RandomGenerator {
    /// A tensor of standard normal values times `std`, with every |value| ≥ `minMagnitude` (values closer to 0
    /// are moved to ±0.5, keeping their sign): keeps finite differences away from kinks at 0.
    public mutating func normalTensor(_ shape: [Int], std: Float = 1, minMagnitude: Float) -> Tensor {
        let t = normalTensor(shape, std: std)
        for i in 0..<t.count where abs(t[i]) < minMagnitude { t[i] = t[i] < 0 ? -0.5 : 0.5 }
        return t
    }
}
