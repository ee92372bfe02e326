import Engine
import Foundation

/// Writes TensorBoard event files: TFRecord framing (length, masked CRC-32C of the length, the record, masked CRC-32C
/// of the record) around `tensorflow.Event` protocol buffers (tensorboard/compat/proto/event.proto, summary.proto).
///
/// Each writer opens a new file `events.out.tfevents.<unix seconds>.<host>.<pid>` in `directory`; TensorBoard reads the
/// files of a directory in name order, so a resumed run appends a file to the same directory. A resumed run first
/// writes `SessionLog.START` at its first step: TensorBoard then drops the earlier values at that step and later
/// (the steps redone after the checkpoint), so no step shows twice.
public final class TensorBoardWriter {
    public let path: String
    private let handle: FileHandle
    /// Told once when writing starts failing (a full disk) and once when it works again; a failed record is cut off
    /// again, so the file stays a sequence of whole records. Reporting never ends a run.
    public var warn: (String) -> Void
    private var failing = false

    /// - Parameter firstStep: the first step this run will write; values at or after it from earlier files are
    ///   replaced (SessionLog START). 1 for a fresh run.
    /// - Throws: `MonitoringError.io` naming the directory when it cannot be made or the file cannot be created.
    public init(
        directory: String, firstStep: Int, wallTime: Double = Date().timeIntervalSince1970,
        warn: @escaping (String) -> Void = { _ in }
    ) throws {
        self.warn = warn
        do { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch {
            throw MonitoringError.io(
                path: directory, reason: "cannot create the TensorBoard directory: \(FileErrorText.reason(error))")
        }
        let host = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "host"
        path = "\(directory)/events.out.tfevents.\(Int(wallTime)).\(host).\(getpid())"
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else {
            throw MonitoringError.io(
                path: path, reason: "cannot create the TensorBoard event file: \(String(cString: strerror(errno)))")
        }
        handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        write(event(wallTime: wallTime, step: 0) { $0.string(3, "brain.Event:2") })  // file_version
        // session_log { status: START }: purges this step and later from what the earlier files said
        write(event(wallTime: wallTime, step: firstStep) { e in e.message(7) { $0.int(1, 1) } })
    }

    deinit { try? handle.close() }

    /// Scalars at `step` (one Summary.Value with simple_value each). TensorBoard stores float32; a non-finite value
    /// is written as NaN or ±inf, which TensorBoard shows as a gap.
    public func scalars(
        _ values: [(tag: String, value: Double)], step: Int, wallTime: Double = Date().timeIntervalSince1970
    ) {
        guard !values.isEmpty else { return }
        write(
            event(wallTime: wallTime, step: step) { e in
                e.message(5) { s in
                    for v in values {
                        s.message(1) { m in
                            m.string(1, v.tag)
                            m.float(2, Float(v.value))
                        }
                    }
                }
            })
    }

    /// A PNG image (Summary.Image: height, width, colorspace 3 = RGB, encoded bytes).
    public func image(
        tag: String, png: [UInt8], width: Int, height: Int, step: Int, wallTime: Double = Date().timeIntervalSince1970
    ) {
        write(
            event(wallTime: wallTime, step: step) { e in
                e.message(5) { s in
                    s.message(1) { m in
                        m.string(1, tag)
                        m.message(4) { i in
                            i.int(1, height)
                            i.int(2, width)
                            i.int(3, 3)
                            i.bytes(4, png)
                        }
                    }
                }
            })
    }

    /// Text for TensorBoard's text plugin: a scalar string tensor (DT_STRING = 7) tagged with plugin "text";
    /// Markdown is rendered.
    public func text(tag: String, _ markdown: String, step: Int, wallTime: Double = Date().timeIntervalSince1970) {
        write(
            event(wallTime: wallTime, step: step) { e in
                e.message(5) { s in
                    s.message(1) { m in
                        m.string(1, tag)
                        m.message(9) { meta in meta.message(1) { $0.string(1, "text") } }  // plugin_data.plugin_name
                        m.message(8) { t in
                            t.int(1, 7)  // dtype DT_STRING
                            t.message(2) { _ in }  // tensor_shape: a scalar
                            t.string(8, markdown)  // string_val
                        }
                    }
                }
            })
    }

    /// Writes buffered records to the file (each record is written whole; a crash loses at most the last one).
    public func flush() { try? handle.synchronize() }

    private func event(wallTime: Double, step: Int, _ what: (inout ProtoWriter) -> Void) -> [UInt8] {
        var e = ProtoWriter()
        e.double(1, wallTime)
        e.int(2, step)
        what(&e)
        return e.bytes
    }

    private func write(_ record: [UInt8]) {
        var frame: [UInt8] = []
        frame.reserveCapacity(record.count + 16)
        let length = withUnsafeBytes(of: UInt64(record.count).littleEndian) { Array($0) }
        frame += length
        withUnsafeBytes(of: CRC32C.masked(length).littleEndian) { frame += $0 }
        frame += record
        withUnsafeBytes(of: CRC32C.masked(record).littleEndian) { frame += $0 }
        let before = try? handle.offset()
        do {
            try handle.write(contentsOf: frame)
            if failing { warn("\(path): writing again") }
            failing = false
        } catch {
            if let before { try? handle.truncate(atOffset: before) }
            if !failing {
                warn("\(path): cannot write: \(FileErrorText.reason(error)); TensorBoard values are lost until it can")
            }
            failing = true
        }
    }
}

/// Errors of the monitoring outputs (TensorBoard files, the HTML report, ONNX export).
public enum MonitoringError: Error, CustomStringConvertible {
    case io(path: String, reason: String)
    case badInput(path: String, reason: String)

    public var description: String {
        switch self {
        case .io(let p, let r): return "\(p): \(r)"
        case .badInput(let p, let r): return "\(p): \(r)"
        }
    }
}
