import Foundation

/// The numeric values of each line of a metrics.jsonl whose names start with one of `prefixes`, line by line.
func loggedValues(_ path: String, prefixes: [String]) throws -> [[String: Double]] {
    try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map { line in
        let o = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
        return o.compactMapValues { $0 as? Double }.filter { kv in prefixes.contains { kv.key.hasPrefix($0) } }
    }
}
