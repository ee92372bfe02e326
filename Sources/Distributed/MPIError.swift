import CMPIShim

/// A failed MPI call, or a failed argument check in front of one.
///
/// MPI's error handler on `MPI_COMM_WORLD` is `MPI_ERRORS_RETURN`, so errors come back as
/// codes and are thrown as this type instead of killing the process inside MPI.
/// Note that a *dead peer* is not reported this way: Open MPI's runtime tears the whole job
/// down first (see platform notes §5).
public struct MPIError: Error, CustomStringConvertible, Equatable, Sendable {
    /// An MPI error code, or one of the negative shim codes (`invalidArgument`, ...).
    public let code: Int32
    /// Human-readable text: `MPI_Error_string` for MPI codes, plus any detail from the caller.
    public let message: String
    /// World rank of the process that saw the error; -1 if not known (before MPI_Init).
    public let rank: Int
    /// The operation that failed, e.g. `"allReduceSum(Float)"`, `"MPI_Init_thread"`.
    public let operation: String

    public init(code: Int32, message: String, rank: Int, operation: String) {
        self.code = code
        self.message = message
        self.rank = rank
        self.operation = operation
    }

    /// Builds the error for `code`, with its text from `MPI_Error_string` (or the shim).
    public init(code: Int32, rank: Int, operation: String, detail: String? = nil) {
        let text = MPIError.errorString(code)
        self.init(
            code: code, message: detail.map { "\(text): \($0)" } ?? text,
            rank: rank, operation: operation)
    }

    public var description: String {
        "MPI error \(code) in \(operation) on rank \(rank): \(message)"
    }

    /// Shim code: a buffer size, count, or root was invalid (checked before calling MPI).
    public static let invalidArgument: Int32 = CMPI_ERR_ARG
    /// Shim code: MPI granted less than `MPI_THREAD_SERIALIZED`.
    public static let threadLevelTooLow: Int32 = CMPI_ERR_THREAD_LEVEL
    /// Shim code: MPI was already finalized (it cannot be initialized twice in a process).
    public static let alreadyFinalized: Int32 = CMPI_ERR_FINALIZED
    /// Shim code: the call needs MPI to be initialized.
    public static let notInitialized: Int32 = CMPI_ERR_NOT_INIT
    /// Shim code: a size too large for MPI's `int` counts even after chunking.
    public static let countTooLarge: Int32 = CMPI_ERR_COUNT

    /// The text for an MPI or shim error code.
    public static func errorString(_ code: Int32) -> String {
        var buffer = [CChar](repeating: 0, count: 512)
        _ = cmpi_error_string(code, &buffer, Int32(buffer.count))
        return String(cString: buffer)
    }
}
