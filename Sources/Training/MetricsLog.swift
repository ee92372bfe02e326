import Engine
import Foundation

/// Appends one JSON object per line to `metrics.jsonl` (flushed each line so that a crash loses at most one).
public final class MetricsLog {
    private let handle: FileHandle
    public let path: String

    /// Opens `path` for appending. With `firstStep`, rows of earlier runs at that step or later are removed first
    /// (a resumed run redoes the steps after its checkpoint: their new values replace the old, as in TensorBoard);
    /// a half-written last line left by a crash goes with them.
    /// - Throws: `TrainingError.io` if the file cannot be read, rewritten, created or opened for appending.
    public init(path: String, firstStep: Int? = nil) throws {
        self.path = path
        if let firstStep, FileManager.default.fileExists(atPath: path) {
            try MetricsLog.truncate(path: path, before: firstStep)
        }
        if !FileManager.default.fileExists(atPath: path) {
            guard FileManager.default.createFile(atPath: path, contents: nil) else {
                throw TrainingError.io(path: path, reason: "cannot create metrics file")
            }
        }
        guard let h = FileHandle(forWritingAtPath: path) else {
            throw TrainingError.io(path: path, reason: "cannot open metrics file for writing")
        }
        handle = h
        handle.seekToEndOfFile()
    }

    deinit { try? handle.close() }

    /// Keeps the rows whose `step` is below `step` (rewritten atomically; untouched when nothing goes).
    static func truncate(path: String, before step: Int) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TrainingError.io(path: path, reason: "cannot read metrics file")
        }
        let lines = data.split(separator: 0x0A, omittingEmptySubsequences: true)
        let kept = lines.filter { line in
            guard let row = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any],
                let s = row["step"] as? Int
            else { return false }
            return s < step
        }
        guard kept.count != lines.count || data.last != 0x0A && !data.isEmpty else { return }
        var out = Data()
        for line in kept {
            out.append(contentsOf: line)
            out.append(0x0A)
        }
        try AtomicFile.write(out, to: path)
    }

    /// Writes `record` (numbers and strings) as one line with sorted keys. A non-finite number is written as `null`
    /// (JSON has no NaN), so a row is never dropped: a NaN loss shows in the monitoring as a gap with its key present.
    /// - Throws: `TrainingError.io` if the row cannot be encoded or written (a full disk); a row is written whole or
    ///   not at all (a failed write is cut off again), so the file stays one JSON object per line.
    public func write(_ record: [String: Any]) throws {
        let clean = record.mapValues { v -> Any in
            if let d = v as? Double, !d.isFinite { return NSNull() }
            if let f = v as? Float, !f.isFinite { return NSNull() }
            return v
        }
        let data: Data
        do { data = try JSONSerialization.data(withJSONObject: clean, options: [.sortedKeys]) } catch {
            throw TrainingError.io(path: path, reason: "cannot encode a metrics row: \(error)")
        }
        var line = data
        line.append(0x0A)
        let before = try? handle.offset()
        do { try handle.write(contentsOf: line) } catch {
            if let before { try? handle.truncate(atOffset: before) }
            throw TrainingError.io(path: path, reason: "cannot write a metrics row: \(FileErrorText.reason(error))")
        }
    }
}
