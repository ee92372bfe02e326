import Foundation

/// Errors reading a safetensors file. Each names the file and what is wrong with it.
public enum SafeTensorsError: Error, CustomStringConvertible, Equatable {
    case unreadable(path: String, reason: String)
    case malformed(path: String, reason: String)
    case unsupportedDType(path: String, tensor: String, dtype: String)
    case missingTensor(path: String, name: String)

    public var description: String {
        switch self {
        case .unreadable(let p, let r): return "\(p): cannot read: \(r)"
        case .malformed(let p, let r): return "\(p): not a valid safetensors file: \(r)"
        case .unsupportedDType(let p, let t, let d):
            return "\(p): tensor \(t) has dtype \(d); only F32 (and F64, F16, BF16 on read) are supported"
        case .missingTensor(let p, let n): return "\(p): no tensor named \(n)"
        }
    }
}

/// The safetensors format (Hugging Face): an 8-byte little-endian header length N, N bytes of JSON
/// `{"__metadata__": {str: str}, name: {"dtype", "shape", "data_offsets": [begin, end]}}`, then the raw
/// little-endian data; offsets are relative to the end of the header. https://github.com/huggingface/safetensors
///
/// Reading validates every size, shape and offset against the file before allocating, so a hostile or truncated
/// file gives an error, never a crash or an unbounded allocation.
public struct SafeTensorsFile {
    public struct Entry {
        public let name: String
        public let dtype: String
        public let shape: [Int]
        public let range: Range<Int>
    }

    public let path: String
    public let metadata: [String: String]
    /// Tensors in file order (by data offset).
    public let entries: [Entry]
    private let data: Data
    private let dataStart: Int

    /// Parses the header of the file at `path` (the file is memory-mapped).
    /// - Throws: `SafeTensorsError` naming the file and the problem.
    public init(path: String) throws {
        let d: Data
        do { d = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) } catch {
            throw SafeTensorsError.unreadable(path: path, reason: FileErrorText.reason(error))
        }
        try self.init(data: d, path: path)
    }

    /// Parses safetensors bytes; `path` is only used in error messages.
    public init(data d: Data, path: String) throws {
        func bad(_ r: String) -> SafeTensorsError { .malformed(path: path, reason: r) }
        guard d.count >= 8 else { throw bad("\(d.count) bytes, shorter than the 8-byte header length") }
        let n = d.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        guard n <= UInt64(d.count - 8), n <= 100_000_000 else {
            throw bad("header length \(n) does not fit the file of \(d.count) bytes")
        }
        let start = 8 + Int(n)
        guard let json = try? JSONSerialization.jsonObject(with: d.subdata(in: 8..<start)) as? [String: Any] else {
            throw bad("header is not a JSON object")
        }
        var meta: [String: String] = [:]
        var list: [Entry] = []
        let payload = d.count - start
        for (name, value) in json {
            if name == "__metadata__" {
                guard let m = value as? [String: Any] else { throw bad("__metadata__ is not an object") }
                for (k, v) in m { meta[k] = v as? String ?? "\(v)" }
                continue
            }
            guard let o = value as? [String: Any], let dtype = o["dtype"] as? String,
                let shapeAny = o["shape"] as? [Any], let offs = o["data_offsets"] as? [Any], offs.count == 2
            else { throw bad("tensor \(name): missing dtype, shape or data_offsets") }
            let shape = try shapeAny.map { v -> Int in
                guard let i = (v as? NSNumber)?.intValue, i >= 0, i <= Int(Int32.max) else {
                    throw bad("tensor \(name): bad dimension \(v)")
                }
                return i
            }
            guard let b = (offs[0] as? NSNumber)?.intValue, let e = (offs[1] as? NSNumber)?.intValue,
                b >= 0, b <= e, e <= payload
            else {
                throw bad("tensor \(name): data_offsets \(offs) outside the \(payload) data bytes")
            }
            guard let size = SafeTensorsFile.elementSize(dtype) else {
                throw SafeTensorsError.unsupportedDType(path: path, tensor: name, dtype: dtype)
            }
            var count = 1
            for s in shape {
                let (m, o) = count.multipliedReportingOverflow(by: s)
                guard !o else { throw bad("tensor \(name): shape \(shape) overflows") }
                count = m
            }
            guard count.multipliedReportingOverflow(by: size).partialValue == e - b, count <= (e - b) else {
                throw bad(
                    "tensor \(name): shape \(shape) of \(dtype) needs \(count * size) bytes, offsets give \(e - b)")
            }
            list.append(Entry(name: name, dtype: dtype, shape: shape, range: b..<e))
        }
        list.sort {
            $0.range.lowerBound < $1.range.lowerBound
                || ($0.range.lowerBound == $1.range.lowerBound && $0.name < $1.name)
        }
        let stored = list.filter { !$0.range.isEmpty }  // empty tensors occupy no bytes and overlap nothing
        for (a, b) in zip(stored, stored.dropFirst()) where a.range.upperBound > b.range.lowerBound {
            throw bad("tensors \(a.name) and \(b.name) overlap")
        }
        self.path = path
        metadata = meta
        entries = list
        data = d
        dataStart = start
    }

    static func elementSize(_ dtype: String) -> Int? {
        switch dtype {
        case "F32": return 4
        case "F64": return 8
        case "F16", "BF16": return 2
        default: return nil
        }
    }

    public var names: [String] { entries.map(\.name) }
    public func entry(_ name: String) -> Entry? { entries.first { $0.name == name } }

    /// The tensor `name` converted to float32.
    /// - Throws: `SafeTensorsError.missingTensor` if absent.
    public func tensor(_ name: String) throws -> Tensor {
        guard let e = entry(name) else { throw SafeTensorsError.missingTensor(path: path, name: name) }
        let t = Tensor(uninitialized: e.shape)
        let n = t.count
        data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            let base = raw.baseAddress! + dataStart + e.range.lowerBound
            switch e.dtype {
            case "F32":
                for i in 0..<n {
                    t[i] = Float(
                        bitPattern: UInt32(littleEndian: base.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))
                }
            case "F64":
                for i in 0..<n {
                    t[i] = Float(
                        Double(
                            bitPattern: UInt64(littleEndian: base.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self))
                        ))
                }
            case "F16":
                for i in 0..<n {
                    t[i] = Float(
                        Float16(
                            bitPattern: UInt16(littleEndian: base.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
                        ))
                }
            default:  // BF16: the upper half of a float32
                for i in 0..<n {
                    t[i] = Float(
                        bitPattern: UInt32(
                            UInt16(littleEndian: base.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) << 16)
                }
            }
        }
        return t
    }

    /// Serialises float32 tensors (in the given order) with `metadata` into safetensors bytes.
    public static func encode(_ tensors: [(String, Tensor)], metadata: [String: String] = [:]) throws -> Data {
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var off = 0
        for (name, t) in tensors {
            header[name] =
                ["dtype": "F32", "shape": t.shape, "data_offsets": [off, off + 4 * t.count]] as [String: Any]
            off += 4 * t.count
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while json.count % 8 != 0 { json.append(0x20) }  // pad with spaces so the data is 8-byte aligned
        var out = Data(capacity: 8 + json.count + off)
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(json)
        for (_, t) in tensors {
            out.append(UnsafeBufferPointer(start: t.data, count: t.count))  // x86-64 and arm64 are little-endian
        }
        return out
    }
}
