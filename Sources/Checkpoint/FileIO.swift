import Engine
import Foundation

/// Test hook: when set, every `FileWriter.write` asks it first; a non-nil errno makes that write fail as if
/// the disk were full (ENOSPC) or broken (EIO). Arguments: file path, bytes already written, bytes to write.
enum FaultInjection {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var hook: ((String, Int, Int) -> Int32?)?
    static var writeFault: ((String, Int, Int) -> Int32?)? {
        get {
            lock.lock()
            defer { lock.unlock() }
            return hook
        }
        set {
            lock.lock()
            hook = newValue
            lock.unlock()
        }
    }
}

func errnoText(_ code: Int32 = errno) -> String { String(cString: strerror(code)) }

/// Sequential writer of a new file through POSIX calls, so errors (ENOSPC, EIO, EACCES) surface with errno.
final class FileWriter {
    let path: String
    private var fd: Int32
    private(set) var written = 0

    init(creating path: String) throws {
        self.path = path
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw CheckpointError.io(path: path, reason: "cannot create: \(errnoText())") }
    }

    deinit { if fd >= 0 { close(fd) } }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        if let code = FaultInjection.writeFault?(path, written, bytes.count) {
            throw CheckpointError.io(path: path, reason: "write failed: \(errnoText(code))")
        }
        var off = 0
        while off < bytes.count {
            let n = Foundation.write(fd, bytes.baseAddress! + off, bytes.count - off)
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw CheckpointError.io(path: path, reason: "write failed: \(errnoText())") }
            off += n
        }
        written += bytes.count
    }

    func write(_ bytes: [UInt8]) throws { try bytes.withUnsafeBytes { try write($0) } }

    /// Overwrites bytes at `offset` (the merged file's header, written last).
    func overwrite(_ bytes: [UInt8], at offset: Int) throws {
        let n = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(offset)) }
        guard n == bytes.count else { throw CheckpointError.io(path: path, reason: "write failed: \(errnoText())") }
    }

    /// fsync + close; the file is durable when this returns.
    func finish() throws {
        guard fsync(fd) == 0 else { throw CheckpointError.io(path: path, reason: "fsync failed: \(errnoText())") }
        let rc = close(fd)
        fd = -1
        guard rc == 0 else { throw CheckpointError.io(path: path, reason: "close failed: \(errnoText())") }
    }
}

enum FileSystem {
    /// The crash-safe write protocol: write `path.tmp`, fsync, rename over `path`, fsync the directory.
    /// On any failure the temporary is removed and `path` is untouched.
    static func writeAtomically(_ path: String, _ body: (FileWriter) throws -> Void) throws {
        let tmp = path + ".tmp"
        do {
            let w: FileWriter
            do { w = try FileWriter(creating: tmp) } catch CheckpointError.io(_, let reason) {
                throw CheckpointError.io(path: path, reason: reason)  // the file asked for, not its temporary
            }
            try body(w)
            try w.finish()
            guard rename(tmp, path) == 0 else {
                throw CheckpointError.io(path: path, reason: "rename failed: \(errnoText())")
            }
        } catch {
            unlink(tmp)
            throw error
        }
        try syncDirectory(parent(path))
    }

    static func syncDirectory(_ dir: String) throws {
        let fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw CheckpointError.io(path: dir, reason: "cannot open directory: \(errnoText())") }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw CheckpointError.io(path: dir, reason: "fsync failed: \(errnoText())") }
    }

    static func parent(_ path: String) -> String {
        let p = (path as NSString).deletingLastPathComponent
        return p.isEmpty ? "." : p
    }

    static func join(_ a: String, _ b: String) -> String { (a as NSString).appendingPathComponent(b) }

    enum Kind { case missing, file, directory, other }

    static func kind(_ path: String) -> Kind {
        var st = stat()
        guard stat(path, &st) == 0 else { return .missing }
        switch st.st_mode & S_IFMT {
        case S_IFREG: return .file
        case S_IFDIR: return .directory
        default: return .other
        }
    }

    /// Directory entries (names), or [] if it cannot be read.
    static func list(_ dir: String) -> [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
    }

    /// `mkdir -p`; fine if it exists already (or another rank creates it at the same moment).
    static func makeDirectory(_ path: String) throws {
        do { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) } catch {
            if kind(path) == .directory { return }
            throw CheckpointError.io(path: path, reason: "cannot create directory: \(FileErrorText.reason(error))")
        }
    }

    static func remove(_ path: String) throws {
        do { try FileManager.default.removeItem(atPath: path) } catch {
            throw CheckpointError.io(path: path, reason: "cannot remove: \(FileErrorText.reason(error))")
        }
    }
}

/// Random-access bytes of a shard or merged file. Reads past the end are errors, never short reads.
protocol ByteSource: AnyObject {
    var size: Int { get }
    func read(_ offset: Int, _ count: Int, into dst: UnsafeMutableRawPointer) throws
}

extension ByteSource {
    func bytes(_ offset: Int, _ count: Int) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        try out.withUnsafeMutableBytes { try read(offset, count, into: $0.baseAddress!) }
        return out
    }
}

final class FileSource: ByteSource {
    let path: String
    let size: Int
    private let fd: Int32

    /// Opens `path`; nil if it does not exist.
    init?(_ path: String) throws {
        self.path = path
        fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT { return nil }
            throw CheckpointError.io(path: path, reason: "cannot open: \(errnoText())")
        }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            close(fd)
            throw CheckpointError.io(path: path, reason: "cannot stat: \(errnoText())")
        }
        size = Int(st.st_size)
    }

    deinit { close(fd) }

    func read(_ offset: Int, _ count: Int, into dst: UnsafeMutableRawPointer) throws {
        guard offset >= 0, count >= 0, offset <= size - count else {
            throw CheckpointError.io(
                path: path, reason: "read of \(count) bytes at \(offset) beyond the \(size)-byte file")
        }
        var done = 0
        while done < count {
            let n = pread(fd, dst + done, count - done, off_t(offset + done))
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                throw CheckpointError.io(
                    path: path, reason: n == 0 ? "file shrank while reading" : "read failed: \(errnoText())")
            }
            done += n
        }
    }
}

final class MemorySource: ByteSource {
    let data: [UInt8]
    var size: Int { data.count }
    init(_ data: [UInt8]) { self.data = data }

    func read(_ offset: Int, _ count: Int, into dst: UnsafeMutableRawPointer) throws {
        guard offset >= 0, count >= 0, offset <= data.count - count else {
            throw CheckpointError.io(
                path: "<memory>", reason: "read of \(count) bytes at \(offset) beyond \(data.count) bytes")
        }
        guard count > 0 else { return }
        data.withUnsafeBytes { dst.copyMemory(from: $0.baseAddress! + offset, byteCount: count) }
    }
}
