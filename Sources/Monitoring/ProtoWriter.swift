/// The protocol-buffer wire format, encode side only: enough for TensorBoard's `Event`/`Summary` and ONNX's
/// `ModelProto`, which are written and never read by this program. (A code generator and a runtime library would
/// serve a few dozen fields; the wire format is four encodings: https://protobuf.dev/programming-guides/encoding/)
public struct ProtoWriter {
    public private(set) var bytes: [UInt8] = []

    public init() {}

    enum WireType: UInt64 {
        case varint = 0
        case fixed64 = 1
        case lengthDelimited = 2
        case fixed32 = 5
    }

    mutating func varint(_ v: UInt64) {
        var v = v
        while v >= 0x80 {
            bytes.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    mutating func key(_ field: Int, _ type: WireType) { varint(UInt64(field) << 3 | type.rawValue) }

    /// int32, int64, uint64, enum and bool fields (negative values take ten bytes, as the format says).
    public mutating func int(_ field: Int, _ v: Int64) {
        key(field, .varint)
        varint(UInt64(bitPattern: v))
    }

    public mutating func int(_ field: Int, _ v: Int) { int(field, Int64(v)) }

    public mutating func double(_ field: Int, _ v: Double) {
        key(field, .fixed64)
        withUnsafeBytes(of: v.bitPattern.littleEndian) { bytes += $0 }
    }

    public mutating func float(_ field: Int, _ v: Float) {
        key(field, .fixed32)
        withUnsafeBytes(of: v.bitPattern.littleEndian) { bytes += $0 }
    }

    public mutating func bytes(_ field: Int, _ v: [UInt8]) {
        key(field, .lengthDelimited)
        varint(UInt64(v.count))
        bytes += v
    }

    public mutating func string(_ field: Int, _ v: String) { bytes(field, Array(v.utf8)) }

    /// The key and length of a length-delimited field whose `count` bytes the caller appends (or writes) next:
    /// a large embedded message is then not copied into its parent.
    public mutating func lengthPrefix(_ field: Int, count: Int) {
        key(field, .lengthDelimited)
        varint(UInt64(count))
    }

    /// An embedded message.
    public mutating func message(_ field: Int, _ build: (inout ProtoWriter) -> Void) {
        var m = ProtoWriter()
        build(&m)
        bytes(field, m.bytes)
    }

    /// A packed repeated float field (raw little-endian floats, as ONNX's `TensorProto.float_data`).
    public mutating func packedFloats(_ field: Int, _ v: [Float]) {
        key(field, .lengthDelimited)
        varint(UInt64(4 * v.count))
        for x in v { withUnsafeBytes(of: x.bitPattern.littleEndian) { bytes += $0 } }
    }

    /// A packed repeated int64 field.
    public mutating func packedInts(_ field: Int, _ v: [Int64]) {
        var m = ProtoWriter()
        for x in v { m.varint(UInt64(bitPattern: x)) }
        bytes(field, m.bytes)
    }
}
