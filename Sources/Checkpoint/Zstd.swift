import CZstd

/// One zstd compression context, reused for every frame of a save (contexts are expensive to create).
/// `workers > 1` sets `ZSTD_c_nbWorkers`, so each frame is compressed by that many zstd threads.
final class ZstdCompressor {
    private let cctx: OpaquePointer

    init(level: Int, workers: Int) throws {
        guard let c = ZSTD_createCCtx() else { throw CheckpointError.invalidArgument("cannot create a zstd context") }
        cctx = c
        try set(ZSTD_c_compressionLevel, level, "level")
        if workers > 1 { try set(ZSTD_c_nbWorkers, workers, "workers") }
    }

    deinit { ZSTD_freeCCtx(cctx) }

    private func set(_ p: ZSTD_cParameter, _ v: Int, _ what: String) throws {
        let rc = ZSTD_CCtx_setParameter(cctx, p, Int32(clamping: v))
        if ZSTD_isError(rc) != 0 { throw CheckpointError.invalidArgument("zstd \(what) \(v): \(Zstd.message(rc))") }
    }

    static func bound(_ n: Int) -> Int { ZSTD_compressBound(n) }

    /// Compresses `src` into one frame in `dst` (capacity at least `bound(src.count)`); returns its size.
    func compress(_ src: UnsafeRawBufferPointer, into dst: UnsafeMutableRawBufferPointer) throws -> Int {
        let rc = ZSTD_compress2(cctx, dst.baseAddress, dst.count, src.baseAddress, src.count)
        if ZSTD_isError(rc) != 0 {
            throw CheckpointError.invalidArgument("zstd compression failed: \(Zstd.message(rc))")
        }
        return rc
    }
}

final class ZstdDecompressor {
    private let dctx: OpaquePointer

    init() {
        guard let d = ZSTD_createDCtx() else { fatalError("out of memory creating a zstd context") }
        dctx = d
    }

    deinit { ZSTD_freeDCtx(dctx) }

    /// Decompresses the frame `src` into `dst`; returns nil on success or zstd's message. The output must
    /// fill `dst` exactly, so a frame can never write past the chunk it claims to be.
    func decompress(_ src: UnsafeRawBufferPointer, into dst: UnsafeMutableRawBufferPointer) -> String? {
        let rc = ZSTD_decompressDCtx(dctx, dst.baseAddress, dst.count, src.baseAddress, src.count)
        if ZSTD_isError(rc) != 0 { return Zstd.message(rc) }
        return rc == dst.count ? nil : "decompressed to \(rc) bytes, expected \(dst.count)"
    }
}

enum Zstd {
    static func message(_ rc: Int) -> String { String(cString: ZSTD_getErrorName(rc)) }
}
