/// Array conveniences over the buffer-pointer collectives.
extension Communicator {
    /// True on rank 0, the coordinator.
    public var isRoot: Bool { rank == 0 }

    /// In-place sum of `values` over all ranks (same `count` on every rank).
    public func allReduceSum(_ values: inout [Float]) throws {
        try values.withUnsafeMutableBufferPointer { try allReduceSum($0) }
    }

    /// In-place sum of `values` over all ranks (same `count` on every rank).
    public func allReduceSum(_ values: inout [Double]) throws {
        try values.withUnsafeMutableBufferPointer { try allReduceSum($0) }
    }

    /// Overwrites `values` with rank `root`'s contents. `values.count` must already be the
    /// same on every rank (use `broadcastBytes(_:root:)` for variable-length data).
    public func broadcast<T: BitwiseCopyable>(_ values: inout [T], root: Int) throws {
        try values.withUnsafeMutableBytes { try broadcast($0, root: root) }
    }

    /// Overwrites `value` with rank `root`'s value (e.g. the ADA probability, a step count).
    public func broadcast<T: BitwiseCopyable>(_ value: inout T, root: Int) throws {
        try withUnsafeMutableBytes(of: &value) { try broadcast($0, root: root) }
    }

    /// Returns rank `root`'s `bytes` on every rank; other ranks' `bytes` are ignored and may
    /// have any length. Costs two broadcasts (the length, then the payload).
    public func broadcastBytes(_ bytes: [UInt8], root: Int) throws -> [UInt8] {
        var count = Int64(bytes.count)
        try broadcast(&count, root: root)
        var payload = rank == root ? bytes : [UInt8](repeating: 0, count: Int(count))
        try broadcast(&payload, root: root)
        return payload
    }

    /// Gathers one fixed-size block per rank at `root`.
    /// - Returns: at `root`, `worldSize` blocks in rank order; elsewhere an empty array.
    public func gather(_ block: [UInt8], root: Int) throws -> [[UInt8]] {
        let isRoot = rank == root
        var flat = [UInt8](repeating: 0, count: isRoot ? block.count * worldSize : 0)
        try block.withUnsafeBytes { send in
            try flat.withUnsafeMutableBytes { recv in
                try gather(send, into: isRoot ? recv : nil, root: root)
            }
        }
        return isRoot ? split(flat, blockSize: block.count) : []
    }

    /// All-gathers one fixed-size block per rank. - Returns: `worldSize` blocks in rank order.
    public func allGather(_ block: [UInt8]) throws -> [[UInt8]] {
        var flat = [UInt8](repeating: 0, count: block.count * worldSize)
        try block.withUnsafeBytes { send in
            try flat.withUnsafeMutableBytes { try allGather(send, into: $0) }
        }
        return split(flat, blockSize: block.count)
    }

    private func split(_ flat: [UInt8], blockSize: Int) -> [[UInt8]] {
        (0..<worldSize).map { Array(flat[$0 * blockSize..<($0 + 1) * blockSize]) }
    }
}
