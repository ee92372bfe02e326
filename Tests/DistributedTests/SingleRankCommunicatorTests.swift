import XCTest

@testable import Distributed

/// Semantics of the world of one (no MPI involved).
final class SingleRankCommunicatorTests: XCTestCase {
    let comm = SingleRankCommunicator()

    func testRankAndSize() {
        XCTAssertEqual(comm.rank, 0)
        XCTAssertEqual(comm.worldSize, 1)
        XCTAssertTrue(comm.isRoot)
        XCTAssertFalse(comm.processorName.isEmpty)
        XCTAssertTrue(comm.rankTag.hasPrefix("[rank 0/1 "))
    }

    func testAllReduceIsIdentity() throws {
        var floats: [Float] = [1.5, -2, 3e-8, .greatestFiniteMagnitude]
        try comm.allReduceSum(&floats)
        XCTAssertEqual(floats, [1.5, -2, 3e-8, .greatestFiniteMagnitude])
        var doubles: [Double] = [0.1, 0.2]
        try comm.allReduceSum(&doubles)
        XCTAssertEqual(doubles, [0.1, 0.2])
        var empty: [Float] = []
        try comm.allReduceSum(&empty)
        XCTAssertEqual(empty, [])
    }

    func testBroadcastFromRootZeroKeepsValues() throws {
        var values: [Int32] = [7, 8, 9]
        try comm.broadcast(&values, root: 0)
        XCTAssertEqual(values, [7, 8, 9])
        var p = 0.25
        try comm.broadcast(&p, root: 0)
        XCTAssertEqual(p, 0.25)
        XCTAssertEqual(try comm.broadcastBytes([1, 2, 3], root: 0), [1, 2, 3])
    }

    func testBroadcastFromMissingRootThrows() {
        var values: [UInt8] = [1]
        XCTAssertThrowsError(try comm.broadcast(&values, root: 1)) { error in
            let mpiError = error as? MPIError
            XCTAssertEqual(mpiError?.code, MPIError.invalidArgument)
            XCTAssertEqual(mpiError?.operation, "broadcast")
            XCTAssertEqual(mpiError?.rank, 0)
            XCTAssertTrue(mpiError?.message.contains("root 1") ?? false, "\(error)")
        }
    }

    func testGatherAndAllGatherReturnOwnBlock() throws {
        XCTAssertEqual(try comm.gather([4, 5, 6], root: 0), [[4, 5, 6]])
        XCTAssertEqual(try comm.allGather([4, 5, 6]), [[4, 5, 6]])
        XCTAssertEqual(try comm.allGather([]), [[]])
        XCTAssertThrowsError(try comm.gather([1], root: 2))
    }

    func testGatherChecksReceiveSize() {
        let block: [UInt8] = [1, 2]
        var tooSmall = [UInt8](repeating: 0, count: 1)
        XCTAssertThrowsError(
            try block.withUnsafeBytes { send in
                try tooSmall.withUnsafeMutableBytes { try comm.allGather(send, into: $0) }
            }
        ) { error in
            XCTAssertEqual((error as? MPIError)?.operation, "allGather")
        }
    }

    /// As under MPI: collectives work until finalize, then each throws "not initialized"; finalize twice is harmless.
    func testEveryOperationAfterFinalizeThrows() throws {
        let comm = SingleRankCommunicator()
        try comm.barrier()
        try comm.finalize()
        try comm.finalize()
        var floats: [Float] = [1]
        var doubles: [Double] = [1]
        var bytes: [UInt8] = [1]
        let calls: [(String, () throws -> Void)] = [
            ("barrier", { try comm.barrier() }),
            ("allReduceSum", { try comm.allReduceSum(&floats) }),
            ("allReduceSum", { try comm.allReduceSum(&doubles) }),
            ("broadcast", { try comm.broadcast(&bytes, root: 0) }),
            ("gather", { _ = try comm.gather([1], root: 0) }),
            ("allGather", { _ = try comm.allGather([1]) }),
        ]
        for (operation, call) in calls {
            XCTAssertThrowsError(try call(), operation) { error in
                XCTAssertEqual((error as? MPIError)?.code, MPIError.notInitialized, "\(operation): \(error)")
                XCTAssertEqual((error as? MPIError)?.operation, operation)
            }
        }
        XCTAssertEqual([floats[0], Float(doubles[0]), Float(bytes[0])], [1, 1, 1])
    }

    func testAbortOnFailurePassesValuesThrough() {
        XCTAssertEqual(comm.abortOnFailure("sum") { 42 }, 42)
    }
}
