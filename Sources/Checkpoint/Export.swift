import Foundation

extension Checkpoints {
    /// Writes the tensors of `reader` whose names pass `include` as a standard safetensors file at `path`
    /// (atomically), streaming chunk by chunk so memory stays at one chunk. Header layout and padding follow
    /// Engine's `SafeTensorsFile.encode`; dtypes keep their safetensors names (F32, F64, I64, U64).
    /// `metadata` defaults to the checkpoint's step, images seen, program version and config.
    /// `progress(done, total)` in bytes written of the tensors' data, after each chunk.
    /// - Returns: the exported names, in manifest order. - Throws: read errors of the checkpoint, `.io`.
    @discardableResult
    public static func exportSafetensors(
        from reader: CheckpointReader, to path: String, include: (String) -> Bool,
        metadata: [String: String]? = nil, progress: ((Int, Int) -> Void)? = nil
    ) throws -> [String] {
        let m = reader.manifest
        let chosen = m.tensors.filter { include($0.name) }
        var header: [String: Any] = [
            "__metadata__": metadata ?? [
                "format": "face2webtoon-export", "step": "\(m.step)", "images_seen": "\(m.imagesSeen)",
                "program_version": m.programVersion, "config": m.config,
            ]
        ]
        var off = 0
        for e in chosen {
            header[e.name] =
                ["dtype": e.dtype.rawValue, "shape": e.shape, "data_offsets": [off, off + e.length]] as [String: Any]
            off += e.length
        }
        var json = Array(try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys]))
        while json.count % 8 != 0 { json.append(0x20) }  // spaces, so the data starts 8-byte aligned
        try FileSystem.writeAtomically(path) { w in
            var n = ByteWriter()
            n.int(json.count)
            try w.write(n.bytes + json)
            var done = 0
            for e in chosen {
                try reader.stream(e) { raw, _ in
                    try w.write(raw)
                    done += raw.count
                    progress?(done, off)
                }
            }
        }
        return chosen.map(\.name)
    }

    /// `exportSafetensors(from:to:include:metadata:)` for the checkpoint at `checkpoint` (any form `open` takes).
    @discardableResult
    public static func exportSafetensors(
        from checkpoint: String, to path: String, include: (String) -> Bool,
        metadata: [String: String]? = nil, progress: ((Int, Int) -> Void)? = nil
    ) throws -> [String] {
        try exportSafetensors(
            from: open(checkpoint), to: path, include: include, metadata: metadata, progress: progress)
    }
}
