import Foundation

/// Optional wall-clock accounting per named section (enabled by `Profile.enabled`); used by `bench`.
public enum Profile {
    nonisolated(unsafe) public static var enabled = false
    nonisolated(unsafe) public static var seconds: [String: Double] = [:]

    @inline(__always)
    public static func time<T>(_ name: String, _ body: () -> T) -> T {
        guard enabled else { return body() }
        let t0 = OpBenchmarks.now()
        let r = body()
        seconds[name, default: 0] += OpBenchmarks.now() - t0
        return r
    }

    public static func reset() { seconds = [:] }
}
