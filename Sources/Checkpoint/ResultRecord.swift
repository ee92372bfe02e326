/// The fixed-size block each rank sends to rank 0 after writing its shard (a gather needs equal sizes):
/// status, error text, host, shard size and checksum, then per tensor its checksum and per frame its
/// size and checksum. Every rank derives the same block size from the plan.
struct ResultRecord {
    static let messageBytes = 1000, hostBytes = 64
    var error: String?
    var host = ""
    var fileBytes = 0
    var fileXXH64: UInt64 = 0
    var tensors: [ShardWriteResult.TensorResult] = []

    /// Block size: the fixed part plus the largest per-rank payload (8 bytes per tensor, 16 per frame).
    static func size(plan: ShardPlan, frames: [Int]) -> Int {
        let payload =
            plan.bytes.indices.map { r in plan.tensors(of: r).reduce(0) { $0 + 8 + 16 * frames[$1] } }.max() ?? 0
        return 1 + (2 + messageBytes) + (2 + hostBytes) + 16 + payload
    }

    static func encode(_ local: Result<ShardWriteResult, Error>, host: String, size: Int) -> [UInt8] {
        var w = ByteWriter()
        switch local {
        case .failure(let e):
            w.u8(0)
            w.text("\(e)", capacity: messageBytes)
            w.text(host, capacity: hostBytes)
        case .success(let s):
            w.u8(1)
            w.text("", capacity: messageBytes)
            w.text(host, capacity: hostBytes)
            w.int(s.fileBytes)
            w.u64(s.fileXXH64)
            for t in s.tensors {
                w.u64(t.xxh64)
                for f in t.frames {
                    w.int(f.bytes)
                    w.u64(f.xxh64)
                }
            }
        }
        w.pad(to: size)
        return w.bytes
    }

    /// Decodes rank `rank`'s block (in the gather, block index = rank).
    static func decode(_ bytes: [UInt8], rank: Int, plan: ShardPlan, frames: [Int]) -> ResultRecord {
        var r = ByteReader(bytes)
        var rec = ResultRecord()
        guard let ok = r.u8(), let message = r.text(capacity: messageBytes), let host = r.text(capacity: hostBytes)
        else {
            return ResultRecord(error: "unreadable result record")
        }
        rec.host = host
        guard ok == 1 else {
            rec.error = message
            return rec
        }
        guard let size = r.int(), let hash = r.u64() else { return ResultRecord(error: "truncated result record") }
        rec.fileBytes = size
        rec.fileXXH64 = hash
        for i in plan.tensors(of: rank) {
            guard let h = r.u64() else { return ResultRecord(error: "truncated result record") }
            var t = ShardWriteResult.TensorResult(xxh64: h, frames: [])
            for _ in 0..<frames[i] {
                guard let n = r.int(), let fh = r.u64() else { return ResultRecord(error: "truncated result record") }
                t.frames.append((n, fh))
            }
            rec.tensors.append(t)
        }
        return rec
    }
}
