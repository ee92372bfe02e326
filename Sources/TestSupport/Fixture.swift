import Engine
import Foundation

/// Errors finding a fixture or a value in it.
public enum FixtureError: Error, CustomStringConvertible {
    case notFound(String)
    case missingMetadata(fixture: String, key: String)
    case badMetadata(fixture: String, key: String, value: String)

    public var description: String {
        switch self {
        case .notFound(let what): return "fixture not found: \(what)"
        case .missingMetadata(let f, let k): return "fixture \(f): no metadata key \(k)"
        case .badMetadata(let f, let k, let v): return "fixture \(f): metadata \(k) = \(v) is not a number"
        }
    }
}

/// A golden fixture: one `<case>.safetensors` file written by `Scripts/golden/make_golden.py` (tensor names and
/// metadata conventions are documented at the top of that script). Test targets locate the file through their
/// own resource bundle, e.g. `Fixture(directory: Bundle.module.url(forResource: "Fixtures", withExtension: nil)!,
/// name: "relu")`.
public struct Fixture {
    public let name: String
    public let file: SafeTensorsFile

    /// Reads `url` (a safetensors file).
    public init(url: URL) throws {
        guard FileManager.default.fileExists(atPath: url.path) else { throw FixtureError.notFound(url.path) }
        file = try SafeTensorsFile(path: url.path)
        name = url.deletingPathExtension().lastPathComponent
    }

    /// Reads `<directory>/<name>.safetensors`.
    public init(directory: URL, name: String) throws {
        try self.init(url: directory.appendingPathComponent(name + ".safetensors"))
    }

    /// The tensor `key` as float32. Throws `SafeTensorsError.missingTensor` if absent.
    public subscript(_ key: String) -> Tensor {
        get throws { try file.tensor(key) }
    }

    /// The tensor `key` as Float64 values.
    public func double(_ key: String) throws -> DTensor { DTensor(try file.tensor(key)) }

    /// Tensor names in file order.
    public var names: [String] { file.names }
    public var metadata: [String: String] { file.metadata }

    /// A metadata string (every fixture has `case`, `kind`, `seed`, `torch_version`).
    public func meta(_ key: String) throws -> String {
        guard let v = file.metadata[key] else { throw FixtureError.missingMetadata(fixture: name, key: key) }
        return v
    }

    /// A numeric metadata value (e.g. `lr`, `stride`, `eps`).
    public func number(_ key: String) throws -> Double {
        let s = try meta(key)
        guard let v = Double(s) else { throw FixtureError.badMetadata(fixture: name, key: key, value: s) }
        return v
    }
}
