import Foundation

/// Appends one JSON object per line to `metrics.jsonl` (flushed each line so that a crash loses at most one).
public final class MetricsLog {
    private let handle: FileHandle
    public let path: String

    /// - Throws: if the file cannot be created or opened for appending.
    public init(path: String) throws {
        self.path = path
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

    /// Writes `record` (numbers and strings) as one line with sorted keys. A non-finite number is written as `null`
    /// (JSON has no NaN), so a row is never dropped: a NaN loss shows in the monitoring as a gap with its key present.
    /// - Throws: `TrainingError.io` if the row cannot be encoded.
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
        handle.write(data)
        handle.write(Data([0x0A]))
    }
}

