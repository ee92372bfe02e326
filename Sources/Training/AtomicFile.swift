import Foundation

/// Crash-safe file replacement for small outputs (debug dumps, the attribute classifier): write
/// `<path>.tmp-<pid>`, fsync it, rename over `path`, fsync the directory.
public enum AtomicFile {
    /// - Throws: `TrainingError.io` naming the path if writing, syncing or renaming fails.
    public static func write(_ data: Data, to path: String) throws {
        let tmp = "\(path).tmp-\(getpid())"
        let fd = Foundation.open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw TrainingError.io(path: tmp, reason: String(cString: strerror(errno))) }
        var err: String?
        data.withUnsafeBytes { raw in
            var off = 0
            while off < raw.count {
                let n = Foundation.write(fd, raw.baseAddress! + off, raw.count - off)
                if n < 0 {
                    if errno == EINTR { continue }
                    err = String(cString: strerror(errno))
                    return
                }
                off += n
            }
        }
        if err == nil && fsync(fd) != 0 { err = String(cString: strerror(errno)) }
        close(fd)
        if let err {
            unlink(tmp)
            throw TrainingError.io(path: path, reason: "write failed: \(err)")
        }
        guard rename(tmp, path) == 0 else {
            let e = String(cString: strerror(errno))
            unlink(tmp)
            throw TrainingError.io(path: path, reason: "rename failed: \(e)")
        }
        let dir = (path as NSString).deletingLastPathComponent
        let dfd = Foundation.open(dir.isEmpty ? "." : dir, O_RDONLY)
        if dfd >= 0 {
            fsync(dfd)
            close(dfd)
        }
    }
}
