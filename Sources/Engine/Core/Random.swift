import Foundation

/// A seeded, splittable random generator (xoshiro256**, seeded through SplitMix64). No global state:
/// every consumer owns one, and its `state` can be saved in a checkpoint and restored bit for bit.
///
/// Streams: `RandomGenerator(seed:, stream: [epoch, index])` derives an independent generator from a seed
/// and a key path, so per-sample randomness depends on (seed, epoch, global index) and not on the rank.
public struct RandomGenerator: RandomNumberGenerator, Codable, Equatable {
    public var state: [UInt64]

    public init(seed: UInt64, stream: [UInt64] = []) {
        var sm = seed
        for k in stream { sm = RandomGenerator.splitmix(&sm) ^ (k &* 0x9E37_79B9_7F4A_7C15) }
        state = (0..<4).map { _ in RandomGenerator.splitmix(&sm) }
        if state.allSatisfy({ $0 == 0 }) { state[0] = 1 }
    }

    /// Restores a saved `state` (four words).
    public init(state: [UInt64]) {
        precondition(state.count == 4, "RandomGenerator state has 4 words, got \(state.count)")
        self.state = state
    }

    private static func splitmix(_ x: inout UInt64) -> UInt64 {
        x &+= 0x9E37_79B9_7F4A_7C15
        var z = x
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    public mutating func next() -> UInt64 {
        let result = ((state[1] &* 5) << 7 | (state[1] &* 5) >> 57) &* 9
        let t = state[1] << 17
        state[2] ^= state[0]
        state[3] ^= state[1]
        state[1] ^= state[2]
        state[0] ^= state[3]
        state[2] ^= t
        state[3] = (state[3] << 45) | (state[3] >> 19)
        return result
    }

    /// Uniform in [0, 1) with 24 random bits (every float32 value of that grid is equally likely).
    public mutating func uniform() -> Float { Float(next() >> 40) * 0x1p-24 }

    /// Uniform in [lo, hi).
    public mutating func uniform(_ lo: Float, _ hi: Float) -> Float { lo + (hi - lo) * uniform() }

    /// Uniform in [0, 1) as a Double with 53 random bits.
    public mutating func uniformDouble() -> Double { Double(next() >> 11) * 0x1p-53 }

    /// Standard normal (Box-Muller; one draw uses two uniforms, nothing is cached so the state says it all).
    public mutating func normal() -> Float {
        let u1 = max(uniformDouble(), 0x1p-60)
        let u2 = uniformDouble()
        return Float((-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2))
    }

    /// An integer uniform in 0..<n.
    public mutating func int(_ n: Int) -> Int { Int(next(upperBound: UInt64(n))) }

    /// A tensor of i.i.d. standard normal values.
    public mutating func normalTensor(_ shape: [Int], std: Float = 1) -> Tensor {
        let t = Tensor(uninitialized: shape)
        for i in 0..<t.count { t[i] = normal() * std }
        return t
    }

    /// A tensor of i.i.d. uniform values in [lo, hi).
    public mutating func uniformTensor(_ shape: [Int], _ lo: Float, _ hi: Float) -> Tensor {
        let t = Tensor(uninitialized: shape)
        for i in 0..<t.count { t[i] = uniform(lo, hi) }
        return t
    }
}

/// PyTorch's default initialisation for Conv2d and Linear (spec A.1).
public enum Init {
    /// fan_in = in_channels·kH·kW for a conv weight [out, in, kH, kW], in_features for a linear weight [out, in].
    public static func fanIn(_ weightShape: [Int]) -> Int { weightShape.dropFirst().reduce(1, *) }

    /// kaiming_uniform_(a = sqrt(5)) = U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    public static func kaimingUniform(_ shape: [Int], _ rng: inout RandomGenerator) -> Tensor {
        let b = 1 / Float(fanIn(shape)).squareRoot()
        return rng.uniformTensor(shape, -b, b)
    }

    /// The bias of a layer whose weight has `weightShape`: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    public static func bias(_ n: Int, weightShape: [Int], _ rng: inout RandomGenerator) -> Tensor {
        let b = 1 / Float(fanIn(weightShape)).squareRoot()
        return rng.uniformTensor([n], -b, b)
    }
}
