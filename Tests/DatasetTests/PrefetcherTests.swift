import Engine
import Foundation
import XCTest
@testable import Dataset

final class PrefetcherTests: XCTestCase {
    func testItemsArriveInOrderForAnyWorkerCount() throws {
        for workers in [1, 3, 8] {
            let p = Prefetcher<Int>(count: 40, depth: 2, workers: workers) { k in
                usleep(UInt32((k * 7919) % 5) * 200)  // uneven work, so workers finish out of order
                return k * k
            }
            var got: [Int] = []
            while let x = try p.next() { got.append(x) }
            XCTAssertEqual(got, (0..<40).map { $0 * $0 }, "\(workers) workers")
            XCTAssertEqual(p.delivered, 40)
        }
    }

    func testQueueIsBounded() throws {
        let lock = NSLock()
        var produced = 0
        func count() -> Int { lock.lock(); defer { lock.unlock() }; return produced }
        func waitFor(_ n: Int) {
            let deadline = Date().addingTimeInterval(10)
            while count() < n && Date() < deadline { usleep(1000) }
        }
        let p = Prefetcher<Int>(depth: 3, workers: 4) { k in
            lock.lock(); produced += 1; lock.unlock()
            return k
        }
        waitFor(3)
        usleep(50_000)  // time for a fourth item, were the bound not enforced
        XCTAssertEqual(count(), 3)
        XCTAssertEqual(try p.next(), 0)
        waitFor(4)
        usleep(50_000)
        XCTAssertEqual(count(), 4)
        p.stop()
    }

    func testErrorsArriveAtTheirPositionAndWaitIsMeasured() throws {
        struct Boom: Error {}
        let p = Prefetcher<Int>(count: 4, depth: 2, workers: 2) { k in
            usleep(20_000)
            if k == 2 { throw Boom() }
            return k
        }
        XCTAssertEqual(try p.next(), 0)
        XCTAssertEqual(try p.next(), 1)
        XCTAssertThrowsError(try p.next()) { XCTAssertTrue($0 is Boom) }
        XCTAssertEqual(try p.next(), 3)
        XCTAssertNil(try p.next())
        XCTAssertGreaterThan(p.waitSeconds, 0.005, "the consumer waited for slow items")
        XCTAssertLessThan(p.waitSeconds, 5)
    }

    /// The prefetched training batches equal direct `batch` calls, whatever the thread count.
    func testPrefetchedBatchesEqualDirectCalls() throws {
        let dir = try temporaryFolder(self)
        for i in 0..<5 { try writeFile(dir, "\(i % 2)/\(i).png", try pngBytes(testImage(24, 20, salt: i))) }
        let ds = try ImageFolderDataset(folder: dir.path, domainTag: 3)
        let order = EpochOrder(count: ds.count, seed: 4, tag: 3)
        for workers in [1, 4] {
            let p = Prefetcher.batches(ds, order: order, batchSize: 2, size: 8, seed: 4, rank: 1, worldSize: 2,
                                       depth: 2, workers: workers)
            for step in 0..<6 {
                let b = try XCTUnwrap(try p.next())
                let direct = try ds.batch(order.batchItems(step: step, batchSize: 2, rank: 1, worldSize: 2),
                                          seed: 4, train: true, size: 8)
                XCTAssertEqual(b.images.shape, [2, 3, 8, 8])
                XCTAssertEqual(b.images.array, direct.images.array, "step \(step), \(workers) workers")
                XCTAssertEqual(b.groups, direct.groups)
                XCTAssertEqual(b.groups, b.indices.map { ds.group(of: $0) })
            }
            p.stop()
        }
    }

    func testDeinitStopsWorkers() throws {
        weak var weakRef: Prefetcher<Int>?
        do {
            let p = Prefetcher<Int>(depth: 2, workers: 2) { $0 }
            weakRef = p
            _ = try p.next()
        }
        XCTAssertNil(weakRef)
    }
}
