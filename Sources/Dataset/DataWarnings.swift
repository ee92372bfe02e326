import Foundation

/// A thread-safe sink for per-file data problems: each file is reported once (by path), then the
/// data set skips it. The trainer logs `handler` calls or reads `reported` at the end.
public final class DataWarnings: @unchecked Sendable {
    private let lock = NSLock()
    private var seen: Set<String> = []
    private var list: [ImageDecodeError] = []
    private let handler: ((ImageDecodeError) -> Void)?

    /// - Parameter handler: called once per bad file (on whichever thread found it).
    public init(handler: ((ImageDecodeError) -> Void)? = nil) { self.handler = handler }

    /// Records `error` unless its file was already reported; returns whether it was new.
    @discardableResult
    public func report(_ error: ImageDecodeError) -> Bool {
        lock.lock()
        let new = seen.insert(error.path).inserted
        if new { list.append(error) }
        lock.unlock()
        if new { handler?(error) }
        return new
    }

    /// The reported problems, in the order they were first seen.
    public var reported: [ImageDecodeError] {
        lock.lock()
        defer { lock.unlock() }
        return list
    }
}
