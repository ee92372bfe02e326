import Foundation

/// Readable text for Foundation's file errors. On Linux, `FileManager` and `Data.write(to:)` throw an `NSError` whose
/// `description` is a dump ("Error Domain=NSCocoaErrorDomain Code=512 "(null)" UserInfo={...}") and whose
/// `localizedDescription` often hides the cause ("The operation could not be completed"); the cause is the
/// underlying POSIX error, and the file is in `userInfo`.
public enum FileErrorText {
    /// The file an error names (`NSFilePathErrorKey`, or the file URL), if any.
    public static func path(_ error: Error) -> String? {
        let info = (error as NSError).userInfo
        return info[NSFilePathErrorKey] as? String ?? (info[NSURLErrorKey] as? URL)?.path
    }

    /// Why: strerror of the underlying POSIX error ("Not a directory"), or a short text for Foundation's own codes,
    /// else the error's localized description.
    public static func reason(_ error: Error) -> String {
        let ns = error as NSError
        if ns.domain == NSPOSIXErrorDomain { return String(cString: strerror(Int32(ns.code))) }
        // on Linux the underlying error is a Swift POSIXError, which `as? NSError` does not match
        if let u = ns.userInfo[NSUnderlyingErrorKey] as? Error, (u as NSError).domain == NSPOSIXErrorDomain {
            return String(cString: strerror(Int32((u as NSError).code)))
        }
        guard ns.domain == NSCocoaErrorDomain else { return ns.localizedDescription }
        switch CocoaError.Code(rawValue: ns.code) {
        case .fileNoSuchFile, .fileReadNoSuchFile: return String(cString: strerror(ENOENT))
        case .fileReadNoPermission, .fileWriteNoPermission: return String(cString: strerror(EACCES))
        case .fileWriteOutOfSpace: return String(cString: strerror(ENOSPC))
        case .fileWriteFileExists: return String(cString: strerror(EEXIST))
        case .fileWriteVolumeReadOnly: return String(cString: strerror(EROFS))
        default: return ns.localizedDescription
        }
    }

    /// "PATH: reason" for a Foundation file error, nil for any other error (ours describe themselves).
    public static func describe(_ error: Error) -> String? {
        let domain = (error as NSError).domain
        guard domain == NSCocoaErrorDomain || domain == NSPOSIXErrorDomain else { return nil }
        return path(error).map { "\($0): \(reason(error))" } ?? reason(error)
    }
}
