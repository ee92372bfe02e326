import XCTest

@testable import Distributed

/// Launch detection, the factory outside mpirun, and `MPIError`.
final class LaunchTests: XCTestCase {
    func testLaunchDetection() {
        XCTAssertFalse(MPIRuntime.isLaunchedByMPIRun(environment: [:]))
        XCTAssertFalse(MPIRuntime.isLaunchedByMPIRun(environment: ["OMPI_MCA_foo": "1"]))
        XCTAssertTrue(MPIRuntime.isLaunchedByMPIRun(environment: ["OMPI_COMM_WORLD_SIZE": "2"]))
        XCTAssertTrue(MPIRuntime.isLaunchedByMPIRun(environment: ["PMIX_RANK": "0"]))
    }

    func testFactoryOutsideMPIRunGivesSingleRankWithoutInitializingMPI() throws {
        try XCTSkipIf(MPIRuntime.isLaunchedByMPIRun(), "this process runs under an MPI launcher")
        let comm = try makeCommunicator()
        XCTAssertTrue(comm is SingleRankCommunicator)
        XCTAssertEqual(comm.rank, 0)
        XCTAssertEqual(comm.worldSize, 1)
        XCTAssertFalse(MPIRuntime.isInitialized, "the factory must not call MPI_Init outside mpirun")
        XCTAssertFalse(MPIRuntime.isFinalized)
    }

    func testLibraryVersionWithoutInit() throws {
        try XCTSkipIf(MPIRuntime.isLaunchedByMPIRun(), "this process runs under an MPI launcher")
        XCTAssertTrue(MPIRuntime.libraryVersion.contains("MPI"), MPIRuntime.libraryVersion)
        XCTAssertFalse(MPIRuntime.isInitialized)
    }

    func testErrorDescription() {
        let error = MPIError(
            code: MPIError.invalidArgument, rank: 3, operation: "gather",
            detail: "receive buffer has 1 bytes, needs 2 x 4")
        XCTAssertEqual(
            error.description,
            "MPI error -1004 in gather on rank 3: CMPI: invalid argument: "
                + "receive buffer has 1 bytes, needs 2 x 4")
        XCTAssertEqual(
            MPIError.errorString(MPIError.threadLevelTooLow),
            "CMPI: MPI does not provide MPI_THREAD_SERIALIZED")
        // MPI's own codes are only spelled out while MPI runs; outside it we say so plainly.
        if !MPIRuntime.isInitialized {
            XCTAssertEqual(MPIError.errorString(7), "MPI error 7 (no text: MPI is not running)")
        }
    }
}
