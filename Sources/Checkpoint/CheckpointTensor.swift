import Engine

/// Element types a checkpoint stores, spelled as in safetensors. All little-endian.
public enum DType: String, Codable, Sendable, CaseIterable {
    case f32 = "F32"
    case f64 = "F64"
    case i64 = "I64"
    case u64 = "U64"

    /// Bytes per element.
    public var size: Int { self == .f32 ? 4 : 8 }
}

/// A named tensor handed to `Checkpoints.save`: float32 weights (an Engine `Tensor`, not copied) or
/// 64-bit values (counters, RNG words, float64 statistics). Shape is row-major; `[]` is a scalar.
public struct CheckpointTensor {
    enum Storage {
        case tensor(Tensor)
        case bytes([UInt8])
        /// Written by another rank (its float32 data is not on this one): only the name and shape are known here.
        case elsewhere
    }

    public let name: String
    public let dtype: DType
    public let shape: [Int]
    let storage: Storage

    /// Float32 `tensor` under `name`; its memory is read during the save, so do not mutate it concurrently.
    public init(_ name: String, _ tensor: Tensor) {
        self.name = name
        dtype = .f32
        shape = tensor.shape
        storage = .tensor(tensor)
    }

    /// A float32 tensor of `shape` that another rank writes (the save plan, `ShardPlan`, gives it to that rank), for
    /// state sharded over the ranks such as the Adam moments of `train --shard-optimizer`: every rank must pass the
    /// same tensor list, but only the writer needs the data. Saving it on the rank the plan gives it to is a
    /// programming error (precondition failure).
    public init(elsewhere name: String, shape: [Int]) {
        self.name = name
        dtype = .f32
        self.shape = shape
        storage = .elsewhere
    }

    public init(_ name: String, float64 values: [Double], shape: [Int]? = nil) {
        self.init(name, .f64, values, shape)
    }

    public init(_ name: String, int64 values: [Int64], shape: [Int]? = nil) {
        self.init(name, .i64, values, shape)
    }

    public init(_ name: String, uint64 values: [UInt64], shape: [Int]? = nil) {
        self.init(name, .u64, values, shape)
    }

    private init<T: FixedWidthInteger>(_ name: String, _ dtype: DType, _ values: [T], _ shape: [Int]?) {
        let s = shape ?? [values.count]
        precondition(
            s.allSatisfy { $0 >= 0 } && s.reduce(1, *) == values.count, "\(name): \(values.count) values for shape \(s)"
        )
        self.name = name
        self.dtype = dtype
        self.shape = s
        storage = .bytes(values.withUnsafeBytes { Array($0) })  // x86-64 and arm64 are little-endian
    }

    private init(_ name: String, _ dtype: DType, _ values: [Double], _ shape: [Int]?) {
        self.init(name, dtype, values.map(\.bitPattern), shape)
    }

    /// Size of the raw data in bytes (elements × dtype size).
    public var byteCount: Int {
        switch storage {
        case .tensor(let t): return t.count * 4
        case .bytes(let b): return b.count
        case .elsewhere: return shape.reduce(4, *)
        }
    }

    func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        switch storage {
        case .tensor(let t): return try body(UnsafeRawBufferPointer(start: t.data, count: t.count * 4))
        case .bytes(let b): return try b.withUnsafeBytes(body)
        case .elsewhere: preconditionFailure("checkpoint tensor \(name) is written by another rank, not this one")
        }
    }
}
