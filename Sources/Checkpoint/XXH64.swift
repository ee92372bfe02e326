/// XXH64 (xxHash, 64-bit, by Yann Collet; spec: github.com/Cyan4973/xxHash doc/xxhash_spec.md), the checksum
/// of every shard, frame and tensor. Chosen because it is well known, has published test vectors, and runs at
/// several GB/s in plain Swift, so checking a shard costs far less than decompressing it.
/// Test vector: `XXH64("", seed 0) = 0xef46db3751d8e999`, `XXH64("abc") = 0x44bc2cf5ad770999`.
struct XXH64 {
    static let p1: UInt64 = 11_400_714_785_074_694_791
    static let p2: UInt64 = 14_029_467_366_897_019_727
    static let p3: UInt64 = 1_609_587_929_392_839_161
    static let p4: UInt64 = 9_650_029_242_287_828_579
    static let p5: UInt64 = 2_870_177_450_012_600_261

    private var v1, v2, v3, v4: UInt64
    private let seed: UInt64
    private var total: UInt64 = 0
    private var tail: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)  // up to 31 pending bytes
    private var tailCount = 0

    init(seed: UInt64 = 0) {
        self.seed = seed
        v1 = seed &+ XXH64.p1 &+ XXH64.p2
        v2 = seed &+ XXH64.p2
        v3 = seed
        v4 = seed &- XXH64.p1
    }

    /// The hash of `bytes` in one call.
    static func hash(_ bytes: UnsafeRawBufferPointer, seed: UInt64 = 0) -> UInt64 {
        var h = XXH64(seed: seed)
        h.update(bytes)
        return h.digest()
    }

    static func hash(_ bytes: [UInt8], seed: UInt64 = 0) -> UInt64 {
        bytes.withUnsafeBytes { hash($0, seed: seed) }
    }

    @inline(__always) static func rotl(_ x: UInt64, _ r: UInt64) -> UInt64 { (x << r) | (x >> (64 - r)) }
    @inline(__always) static func round(_ acc: UInt64, _ lane: UInt64) -> UInt64 {
        rotl(acc &+ lane &* p2, 31) &* p1
    }
    @inline(__always) static func merge(_ acc: UInt64, _ v: UInt64) -> UInt64 {
        (acc ^ round(0, v)) &* p1 &+ p4
    }

    /// Feeds `bytes`; any split of the input gives the same digest.
    mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard var p = bytes.baseAddress, bytes.count > 0 else { return }
        var n = bytes.count
        total &+= UInt64(n)
        if tailCount + n < 32 {
            withUnsafeMutableBytes(of: &tail) {
                $0.baseAddress!.advanced(by: tailCount).copyMemory(from: p, byteCount: n)
            }
            tailCount += n
            return
        }
        if tailCount > 0 {
            let fill = 32 - tailCount
            withUnsafeMutableBytes(of: &tail) {
                $0.baseAddress!.advanced(by: tailCount).copyMemory(from: p, byteCount: fill)
            }
            let t = tail
            stripe(
                UInt64(littleEndian: t.0), UInt64(littleEndian: t.1), UInt64(littleEndian: t.2),
                UInt64(littleEndian: t.3))
            p += fill
            n -= fill
            tailCount = 0
        }
        var a = v1
        var b = v2
        var c = v3
        var d = v4
        while n >= 32 {
            a = XXH64.round(a, UInt64(littleEndian: p.loadUnaligned(as: UInt64.self)))
            b = XXH64.round(b, UInt64(littleEndian: p.loadUnaligned(fromByteOffset: 8, as: UInt64.self)))
            c = XXH64.round(c, UInt64(littleEndian: p.loadUnaligned(fromByteOffset: 16, as: UInt64.self)))
            d = XXH64.round(d, UInt64(littleEndian: p.loadUnaligned(fromByteOffset: 24, as: UInt64.self)))
            p += 32
            n -= 32
        }
        v1 = a
        v2 = b
        v3 = c
        v4 = d
        if n > 0 {
            withUnsafeMutableBytes(of: &tail) { $0.baseAddress!.copyMemory(from: p, byteCount: n) }
            tailCount = n
        }
    }

    private mutating func stripe(_ a: UInt64, _ b: UInt64, _ c: UInt64, _ d: UInt64) {
        v1 = XXH64.round(v1, a)
        v2 = XXH64.round(v2, b)
        v3 = XXH64.round(v3, c)
        v4 = XXH64.round(v4, d)
    }

    /// The hash of everything fed so far (the state is not consumed).
    func digest() -> UInt64 {
        var h: UInt64
        if total >= 32 {
            h = XXH64.rotl(v1, 1) &+ XXH64.rotl(v2, 7) &+ XXH64.rotl(v3, 12) &+ XXH64.rotl(v4, 18)
            h = XXH64.merge(h, v1)
            h = XXH64.merge(h, v2)
            h = XXH64.merge(h, v3)
            h = XXH64.merge(h, v4)
        } else {
            h = seed &+ XXH64.p5
        }
        h &+= total
        var t = tail
        let n = tailCount
        withUnsafeBytes(of: &t) { raw in
            var i = 0
            while i + 8 <= n {
                h ^= XXH64.round(0, UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)))
                h = XXH64.rotl(h, 27) &* XXH64.p1 &+ XXH64.p4
                i += 8
            }
            if i + 4 <= n {
                h ^= UInt64(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: i, as: UInt32.self))) &* XXH64.p1
                h = XXH64.rotl(h, 23) &* XXH64.p2 &+ XXH64.p3
                i += 4
            }
            while i < n {
                h ^= UInt64(raw[i]) &* XXH64.p5
                h = XXH64.rotl(h, 11) &* XXH64.p1
                i += 1
            }
        }
        h ^= h >> 33
        h &*= XXH64.p2
        h ^= h >> 29
        h &*= XXH64.p3
        h ^= h >> 32
        return h
    }
}

/// Checksums are written as 16 lowercase hex digits (JSON numbers lose precision above 2^53).
enum Hex {
    static func string(_ v: UInt64) -> String {
        let s = String(v, radix: 16)
        return String(repeating: "0", count: 16 - s.count) + s
    }

    /// Parses exactly 16 hex digits; nil otherwise.
    static func parse(_ s: String) -> UInt64? {
        guard s.utf8.count == 16, s.utf8.allSatisfy({ (48...57).contains($0) || (97...102).contains($0) }) else {
            return nil
        }
        return UInt64(s, radix: 16)
    }
}

/// XXH64 of a byte range, for callers outside checkpoints (the trainer compares parameter hashes across ranks).
public func xxh64(_ bytes: UnsafeRawBufferPointer, seed: UInt64 = 0) -> UInt64 { XXH64.hash(bytes, seed: seed) }
