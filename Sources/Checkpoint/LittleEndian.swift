/// Little-endian encoding of the fixed binary headers and of the records ranks exchange while saving.
struct ByteWriter {
    private(set) var bytes: [UInt8] = []

    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func int(_ v: Int) { u64(UInt64(bitPattern: Int64(v))) }
    mutating func raw(_ b: [UInt8]) { bytes.append(contentsOf: b) }

    /// A string in a fixed field: u16 length, then `capacity` bytes (UTF-8, truncated, zero-padded).
    mutating func text(_ s: String, capacity: Int) {
        let u = Array(s.utf8.prefix(capacity))
        bytes.append(UInt8(u.count & 0xFF))
        bytes.append(UInt8(u.count >> 8))
        bytes += u + [UInt8](repeating: 0, count: capacity - u.count)
    }

    mutating func pad(to size: Int) { bytes += [UInt8](repeating: 0, count: max(0, size - bytes.count)) }
}

/// Reads what `ByteWriter` wrote; every read is bounds-checked and returns nil past the end.
struct ByteReader {
    let bytes: [UInt8]
    private(set) var position = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    mutating func take(_ n: Int) -> ArraySlice<UInt8>? {
        guard n >= 0, n <= bytes.count - position else { return nil }
        defer { position += n }
        return bytes[position..<position + n]
    }

    mutating func u8() -> UInt8? { take(1)?.first }
    mutating func u32() -> UInt32? { take(4).map { $0.reversed().reduce(0) { $0 << 8 | UInt32($1) } } }
    mutating func u64() -> UInt64? { take(8).map { $0.reversed().reduce(0) { $0 << 8 | UInt64($1) } } }
    mutating func int() -> Int? { u64().map { Int(Int64(bitPattern: $0)) } }

    mutating func text(capacity: Int) -> String? {
        guard let l = take(2), let body = take(capacity) else { return nil }
        let n = Int(l[l.startIndex]) | Int(l[l.startIndex + 1]) << 8
        return String(decoding: body.prefix(min(n, capacity)), as: UTF8.self)
    }
}
