/// Byte-plane shuffle: `n` elements of `k` bytes become k planes of n bytes (all first bytes, then all second
/// bytes, ...): `out[j*n + i] = in[i*k + j]`. Why: the sign/exponent bytes of float weights are nearly
/// constant, so zstd compresses the planes ~10% better than interleaved floats (docs/reference.md §R.3).
/// Byte order is little-endian (x86-64, arm64). `k == 1` is a plain copy.
enum ByteShuffle {
    static func shuffle(_ src: UnsafeRawBufferPointer, into dst: UnsafeMutableRawBufferPointer, elementSize k: Int) {
        precondition(src.count % k == 0 && dst.count >= src.count, "shuffle: \(src.count) bytes, element size \(k)")
        guard let s = src.baseAddress, let d = dst.baseAddress else { return }
        let n = src.count / k
        let inp = s.assumingMemoryBound(to: UInt8.self)
        let out = d.assumingMemoryBound(to: UInt8.self)
        switch k {
        case 4:
            // 16 floats at a time: byte j of each lane is a truncating narrow of (lane >> 8j), one
            // vector instruction per plane (vpmovdb with AVX-512).
            var i = 0
            while i + 16 <= n {
                let v = s.loadUnaligned(fromByteOffset: 4 * i, as: SIMD16<UInt32>.self)
                (d + i).storeBytes(of: SIMD16<UInt8>(truncatingIfNeeded: v), as: SIMD16<UInt8>.self)
                (d + n + i).storeBytes(of: SIMD16<UInt8>(truncatingIfNeeded: v &>> 8), as: SIMD16<UInt8>.self)
                (d + 2 * n + i).storeBytes(of: SIMD16<UInt8>(truncatingIfNeeded: v &>> 16), as: SIMD16<UInt8>.self)
                (d + 3 * n + i).storeBytes(of: SIMD16<UInt8>(truncatingIfNeeded: v &>> 24), as: SIMD16<UInt8>.self)
                i += 16
            }
            for i in i..<n { for j in 0..<4 { out[j * n + i] = inp[i * 4 + j] } }
        default:
            for i in 0..<n { for j in 0..<k { out[j * n + i] = inp[i * k + j] } }
        }
    }

    static func unshuffle(_ src: UnsafeRawBufferPointer, into dst: UnsafeMutableRawBufferPointer, elementSize k: Int) {
        precondition(src.count % k == 0 && dst.count >= src.count, "unshuffle: \(src.count) bytes, element size \(k)")
        guard let s = src.baseAddress, let d = dst.baseAddress else { return }
        let n = src.count / k
        let inp = s.assumingMemoryBound(to: UInt8.self)
        let out = d.assumingMemoryBound(to: UInt8.self)
        switch k {
        case 4:
            var i = 0
            while i + 16 <= n {
                func plane(_ j: Int) -> SIMD16<UInt32> {
                    SIMD16<UInt32>(
                        truncatingIfNeeded: s.loadUnaligned(fromByteOffset: j * n + i, as: SIMD16<UInt8>.self))
                        &<< UInt32(8 * j)
                }
                d.storeBytes(
                    of: plane(0) | plane(1) | plane(2) | plane(3), toByteOffset: 4 * i, as: SIMD16<UInt32>.self)
                i += 16
            }
            for i in i..<n { for j in 0..<4 { out[i * 4 + j] = inp[j * n + i] } }
        default:
            for i in 0..<n { for j in 0..<k { out[i * k + j] = inp[j * n + i] } }
        }
    }
}
