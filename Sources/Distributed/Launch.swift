import CMPIShim

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Process-wide MPI facts that can be queried without initializing MPI.
public enum MPIRuntime {
    /// Variables the Open MPI launcher (mpirun/orted, or a PMIx launcher such as srun)
    /// sets for every rank. If none is set, the process was not launched as an MPI job.
    public static let launchVariables = ["OMPI_COMM_WORLD_SIZE", "PMIX_RANK"]

    /// Whether `MPI_Init` has been called in this process (even if finalized since).
    public static var isInitialized: Bool { cmpi_initialized() != 0 }
    /// Whether `MPI_Finalize` has been called in this process.
    public static var isFinalized: Bool { cmpi_finalized() != 0 }

    /// `MPI_Get_library_version`, e.g. "Open MPI v4.1.4, package: Debian OpenMPI, ...".
    /// Does not initialize MPI.
    public static var libraryVersion: String {
        var buffer = [CChar](repeating: 0, count: 1024)
        _ = cmpi_library_version(&buffer, Int32(buffer.count))
        return String(cString: buffer)
    }

    /// True if any of `launchVariables` is set, in `environment` or (if nil) the process
    /// environment.
    public static func isLaunchedByMPIRun(environment: [String: String]? = nil) -> Bool {
        launchVariables.contains { name in
            if let environment { return environment[name] != nil }
            return getenv(name) != nil
        }
    }
}

/// The communicator for this process: `MPICommunicator` when launched by mpirun (see
/// `MPIRuntime.isLaunchedByMPIRun`), otherwise a `SingleRankCommunicator`, in which case
/// MPI is **not** initialized (no singleton daemon, no 0.3 s start-up cost).
/// - Parameter environment: overrides the process environment (for tests).
/// - Throws: `MPIError` if MPI initialization fails.
public func makeCommunicator(environment: [String: String]? = nil) throws -> any Communicator {
    if MPIRuntime.isLaunchedByMPIRun(environment: environment) {
        return try MPICommunicator()
    }
    return SingleRankCommunicator()
}
