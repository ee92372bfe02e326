import Engine
import Foundation
import Monitoring

/// A small ONNX graph builder: nodes in topological order, float32 and int64 initializers, and the `ModelProto`
/// encoding (onnx/onnx.proto, IR version 8, the default opset domain). Only what the generator export needs.
///
/// Values are named by strings, as in ONNX; `op` returns the name of the node's (single) output.
public struct ONNXGraph {
    /// ONNX `AttributeProto` values used here.
    public enum Attribute {
        case int(String, Int)
        case ints(String, [Int])
        case float(String, Float)
        case string(String, String)

        var typeCode: Int {
            switch self {
            case .float: return 1
            case .int: return 2
            case .string: return 3
            case .ints: return 7
            }
        }
    }

    /// ONNX `TensorProto.DataType` codes.
    enum DataType: Int { case float = 1, int64 = 7 }

    struct Node {
        let op: String
        let name: String
        let inputs: [String]
        let outputs: [String]
        let attributes: [Attribute]
    }

    struct Initializer {
        let name: String
        let shape: [Int]
        let type: DataType
        let raw: [UInt8]  // little-endian, as TensorProto.raw_data
    }

    /// A graph input or output: name, element type float, shape with symbolic (`String`) or fixed (`Int`) sizes.
    public struct ValueInfo {
        public let name: String
        public let shape: [Dimension]
        public enum Dimension {
            case fixed(Int)
            case symbolic(String)
        }
        public init(_ name: String, _ shape: [Dimension]) {
            self.name = name
            self.shape = shape
        }
    }

    var nodes: [Node] = []
    var initializers: [Initializer] = []
    var names = Set<String>()
    var counter = 0

    public init() {}

    /// A fresh value name with a readable prefix (ONNX wants every value name unique in the graph).
    mutating func fresh(_ hint: String) -> String {
        counter += 1
        let n = "\(hint)_\(counter)"
        names.insert(n)
        return n
    }

    /// Adds a node with one output and returns the output's name.
    @discardableResult
    public mutating func op(
        _ type: String, _ inputs: [String], _ attributes: [Attribute] = [], name hint: String? = nil,
        output: String? = nil
    ) -> String {
        let out = output ?? fresh(hint ?? type.lowercased())
        nodes.append(Node(op: type, name: "\(type)_\(nodes.count)", inputs: inputs, outputs: [out], attributes: attributes))
        return out
    }

    /// A float32 initializer holding `tensor` under `name` (a parameter keeps its state_dict key). Each name once.
    public mutating func weight(_ name: String, _ tensor: Tensor, shape: [Int]? = nil) -> String {
        if names.contains(name) { return name }
        names.insert(name)
        let shape = shape ?? tensor.shape
        precondition(shape.reduce(1, *) == tensor.count, "ONNX initializer \(name): shape \(shape) for \(tensor.count)")
        let raw = [UInt8](UnsafeRawBufferPointer(start: tensor.data, count: 4 * tensor.count))
        initializers.append(Initializer(name: name, shape: shape, type: .float, raw: raw))
        return name
    }

    /// A float32 constant (an initializer with a generated name).
    public mutating func constant(_ values: [Float], shape: [Int], hint: String = "const") -> String {
        let name = fresh(hint)
        let raw = values.withUnsafeBytes { [UInt8]($0) }
        initializers.append(Initializer(name: name, shape: shape, type: .float, raw: raw))
        return name
    }

    /// An int64 constant: axes, pads, shapes (inputs of Pad, Unsqueeze, Reshape, ReduceSum since opset 13).
    public mutating func ints(_ values: [Int], hint: String = "ints") -> String {
        let name = fresh(hint)
        let raw = values.map { Int64($0).littleEndian }.withUnsafeBytes { [UInt8]($0) }
        initializers.append(Initializer(name: name, shape: [values.count], type: .int64, raw: raw))
        return name
    }

    /// Writes the `ModelProto` to `path` (atomically: a temporary file renamed into place).
    /// - Throws: `MonitoringError.io` naming `path` and the cause if it cannot be created or written.
    public func write(
        to path: String, inputs: [ValueInfo], outputs: [ValueInfo], metadata: [(String, String)],
        graphName: String, opset: Int = 17, docString: String = ""
    ) throws {
        var model = ProtoWriter()
        model.int(1, 8)  // ir_version: IR 8 goes with opset 17
        model.string(2, "face2webtoon")  // producer_name
        model.message(8) { o in  // opset_import: the default domain
            o.string(1, "")
            o.int(2, opset)
        }
        if !docString.isEmpty { model.string(6, docString) }
        for (k, v) in metadata {
            model.message(14) { e in  // metadata_props
                e.string(1, k)
                e.string(2, v)
            }
        }
        let graph = encodeGraph(name: graphName, inputs: inputs, outputs: outputs)
        model.lengthPrefix(7, count: graph.count)  // graph, appended below without a second copy
        let tmp = path + ".tmp-\(getpid())"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else {
            throw MonitoringError.io(path: path, reason: "cannot create: \(String(cString: strerror(errno)))")
        }
        let h = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        do {
            try h.write(contentsOf: model.bytes)
            try h.write(contentsOf: graph)
            try h.synchronize()
            try h.close()
            if FileManager.default.fileExists(atPath: path) { try FileManager.default.removeItem(atPath: path) }
            try FileManager.default.moveItem(atPath: tmp, toPath: path)
        } catch {
            try? FileManager.default.removeItem(atPath: tmp)
            throw MonitoringError.io(path: path, reason: "cannot write: \(FileErrorText.reason(error))")
        }
    }

    /// `GraphProto`: node = 1, name = 2, initializer = 5, input = 11, output = 12.
    func encodeGraph(name: String, inputs: [ValueInfo], outputs: [ValueInfo]) -> [UInt8] {
        var g = ProtoWriter()
        for n in nodes {
            g.message(1) { p in
                for i in n.inputs { p.string(1, i) }
                for o in n.outputs { p.string(2, o) }
                p.string(3, n.name)
                p.string(4, n.op)
                for a in n.attributes { p.message(5) { ONNXGraph.encode(a, &$0) } }
            }
        }
        g.string(2, name)
        for t in initializers {
            g.message(5) { p in  // TensorProto: dims = 1, data_type = 2, name = 8, raw_data = 9
                for d in t.shape { p.int(1, d) }
                p.int(2, t.type.rawValue)
                p.string(8, t.name)
                p.bytes(9, t.raw)
            }
        }
        for (field, values) in [(11, inputs), (12, outputs)] {
            for v in values {
                g.message(field) { p in  // ValueInfoProto: name = 1, type = 2
                    p.string(1, v.name)
                    p.message(2) { ty in  // TypeProto.tensor_type = 1
                        ty.message(1) { tt in  // elem_type = 1, shape = 2
                            tt.int(1, DataType.float.rawValue)
                            tt.message(2) { sh in
                                for d in v.shape {
                                    sh.message(1) { dim in  // dim_value = 1, dim_param = 2
                                        switch d {
                                        case .fixed(let n): dim.int(1, n)
                                        case .symbolic(let s): dim.string(2, s)
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return g.bytes
    }

    /// `AttributeProto`: name = 1, f = 2, i = 3, s = 4, ints = 8, type = 20 (FLOAT 1, INT 2, STRING 3, INTS 7).
    static func encode(_ a: Attribute, _ p: inout ProtoWriter) {
        switch a {
        case .float(let n, let v):
            p.string(1, n)
            p.float(2, v)
        case .int(let n, let v):
            p.string(1, n)
            p.int(3, v)
        case .string(let n, let v):
            p.string(1, n)
            p.string(4, v)
        case .ints(let n, let v):
            p.string(1, n)
            p.packedInts(8, v.map(Int64.init))
        }
        p.int(20, a.typeCode)
    }
}
