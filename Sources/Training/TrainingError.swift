/// Why training cannot start or go on. Each case maps to its own exit status (`ExitStatus.init(for:)`,
/// docs/exit-status.md), so a restart loop can tell a failure worth a retry from one that would repeat.
/// Every message names the file, option or rank involved and says what to change.
public enum TrainingError: Error, CustomStringConvertible {
    /// A result file (metrics, samples) cannot be written: exit 74.
    case io(path: String, reason: String)
    /// Options that cannot work together (one problem per line): exit 64.
    case invalidConfig([String])
    /// The checkpoint to resume cannot be used: exit 66.
    case checkpoint(path: String, reason: String)
    /// Ranks hold different configurations, parameters or ADA strengths: exit 68.
    case rankMismatch(String)
    /// Losses, gradients or parameters stopped being finite; the last good checkpoint stays current: exit 67.
    case nonFinite(String)
    /// The memory estimate exceeds what the ranks on this host may use: exit 69.
    case insufficientMemory(String)
    /// Another run holds the result folder's lock: exit 75 (retried: it may be ending).
    case resultFolderInUse(path: String, holder: String)

    public var description: String {
        switch self {
        case .io(let p, let r): return "\(p): \(r)"
        case .invalidConfig(let list): return "invalid configuration:\n  " + list.joined(separator: "\n  ")
        case .checkpoint(let p, let r): return "checkpoint \(p): \(r)"
        case .rankMismatch(let m): return "ranks disagree: \(m)"
        case .nonFinite(let m): return m
        case .insufficientMemory(let m): return m
        case .resultFolderInUse(let p, let h):
            return "\(p): in use by another run (\(h)): wait for it to end, or give this run another --result-dir"
        }
    }
}
