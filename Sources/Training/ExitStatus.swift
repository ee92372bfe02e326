import Checkpoint
import Dataset
import Distributed
import Foundation
import KID
import Monitoring

/// The exit statuses of `face2webtoon`, one per kind of failure, so that a restart loop can tell a failure worth a
/// retry (a peer died, a collective hung) from one that would fail the same way again (docs/exit-status.md,
/// `Deploy/restart-on-failure --fatal-codes`). 64-74 follow BSD sysexits.h where a meaning matches.
public enum ExitStatus: Int32, CaseIterable, Sendable {
    case success = 0
    /// An unexpected failure (a bug): worth one restart.
    case failure = 1
    /// Bad options (EX_USAGE): not retried.
    case usage = 64
    /// The data folder or its images cannot be used, or `report`'s result folder has no metrics (EX_DATAERR): not
    /// retried.
    case badData = 65
    /// The checkpoint to resume or read cannot be used (EX_NOINPUT): not retried without --resume-fallback.
    case checkpointUnreadable = 66
    /// Training stopped on non-finite losses, gradients or parameters; the last good checkpoint stays current:
    /// not retried (it would diverge the same way; lower --lr).
    case nonFinite = 67
    /// A rank saw a peer fail: a collective failed or hung past --collective-timeout, or the ranks disagree: retried.
    /// (A rank killed by a signal makes mpirun itself exit 128 + the signal, e.g. 137, which a restart loop retries.)
    case peerFailure = 68
    /// The memory estimate exceeds what the ranks on this host may use: not retried.
    case insufficientMemory = 69
    /// Results, images or checkpoints cannot be written, or a file fails to read (EX_IOERR: disk full, permissions,
    /// I/O errors): not retried.
    case io = 74
    /// The result folder is in use by another run (EX_TEMPFAIL): retried, as that run may be ending.
    case resultFolderInUse = 75

    /// The statuses a restart loop should not retry.
    public static let notWorthARestart: [ExitStatus] = [
        .usage, .badData, .checkpointUnreadable, .nonFinite,
        .insufficientMemory, .io,
    ]

    /// The status for an error that ends the program (ArgumentParser's own errors are mapped by it: 64 for usage).
    public init(for error: Error) {
        switch error {
        case is DatasetError, is KIDError: self = .badData
        case let e as CheckpointError:
            switch e {
            case .saveFailed, .io: self = .io
            default: self = .checkpointUnreadable
            }
        case let e as TrainingError:
            switch e {
            case .io: self = .io
            case .invalidConfig: self = .usage
            case .checkpoint: self = .checkpointUnreadable
            case .rankMismatch: self = .peerFailure
            case .nonFinite: self = .nonFinite
            case .insufficientMemory: self = .insufficientMemory
            case .resultFolderInUse: self = .resultFolderInUse
            }
        case is MPIError: self = .peerFailure
        case is ImageEncodeError: self = .io  // an output image (translate, samples) cannot be written
        case let e as MonitoringError:
            switch e {
            case .io: self = .io
            case .badInput: self = .badData  // e.g. `report` of a folder without metrics.jsonl
            }
        default:
            // Foundation's file errors (FileManager, Data(contentsOf:), write(to:)): a file or folder that cannot be
            // read or written, not a bug
            let domain = (error as NSError).domain
            self = domain == NSCocoaErrorDomain || domain == NSPOSIXErrorDomain ? .io : .failure
        }
    }
}
