/// Problems the KID pipeline reports to its caller (the CLI turns them into a message and an exit code).
public enum KIDError: Error, Equatable, CustomStringConvertible {
    /// The Inception weights file does not exist; `command` creates it.
    case missingWeights(path: String, command: String)
    /// The weights file exists but is not the FID Inception-v3 in the expected format.
    case badWeights(path: String, reason: String)
    /// A feature set is too small or the sets disagree in dimension.
    case badFeatures(String)
    /// A folder gave no usable image.
    case noImages(folder: String)

    public var description: String {
        switch self {
        case .missingWeights(let p, let c):
            return "FID Inception weights not found at \(p). Create them once (outside the repository), from the "
                + "repository root in a Python environment with torch and safetensors:\n  \(c)"
        case .badWeights(let p, let r): return "\(p): not usable FID Inception-v3 weights: \(r)"
        case .badFeatures(let r): return "KID: \(r)"
        case .noImages(let f): return "\(f): no readable image"
        }
    }
}
