import Engine
import Foundation
import XCTest

@testable import Dataset

final class PrefetcherTests: XCTestCase {
    /// Waits (up to 10 s) until `condition` holds; the assertions that follow do not depend on timing.
    private func waitUntil(_ condition: () -> Bool) {
        let deadline = Date().addingTimeInterval(10)
        while !condition() && Date() < deadline { usleep(500) }
    }

    /// With several workers, item k is held back until item k + 1 is done, so items finish out of order every time.
    func testItemsArriveInOrderForAnyWorkerCount() throws {
        for workers in [1, 3, 8] {
            let done = (0..<41).map { _ in DispatchSemaphore(value: 0) }
            let p = Prefetcher<Int>(count: 40, depth: 4, workers: workers) { k in
                if workers > 1 && k % 2 == 0 && k + 1 < 40 { done[k + 1].wait() }
                defer { done[k].signal() }
                return k * k
            }
            var got: [Int] = []
            while let x = try p.next() { got.append(x) }
            XCTAssertEqual(got, (0..<40).map { $0 * $0 }, "\(workers) workers")
            XCTAssertEqual(p.delivered, 40)
        }
    }

    /// Once every worker is blocked, exactly `depth` items exist; each `next()` frees exactly one slot.
    func testQueueIsBounded() throws {
        let lock = NSLock()
        var produced = 0
        func count() -> Int {
            lock.lock()
            defer { lock.unlock() }
            return produced
        }
        let p = Prefetcher<Int>(depth: 3, workers: 4) { k in
            lock.lock()
            produced += 1
            lock.unlock()
            return k
        }
        waitUntil { p.idleWorkers == 4 }
        XCTAssertEqual(p.idleWorkers, 4, "a worker is still producing past the bound")
        XCTAssertEqual(count(), 3)
        XCTAssertEqual(try p.next(), 0)
        waitUntil { count() == 4 && p.idleWorkers == 4 }
        XCTAssertEqual(p.idleWorkers, 4)
        XCTAssertEqual(count(), 4)
        p.stop()
    }

    /// Item 0 is released only once the consumer is blocked in `next()`, so the wait is measured every time.
    func testErrorsArriveAtTheirPositionAndWaitIsMeasured() throws {
        struct Boom: Error {}
        let gate = DispatchSemaphore(value: 0)
        let p = Prefetcher<Int>(count: 4, depth: 2, workers: 2) { k in
            if k == 0 { gate.wait() }
            if k == 2 { throw Boom() }
            return k
        }
        let opener = Thread { [p] in
            while !p.isConsumerWaiting { usleep(200) }
            gate.signal()
        }
        opener.start()
        XCTAssertEqual(try p.next(), 0)
        XCTAssertEqual(try p.next(), 1)
        XCTAssertThrowsError(try p.next()) { XCTAssertTrue($0 is Boom) }
        XCTAssertEqual(try p.next(), 3)
        XCTAssertNil(try p.next())
        XCTAssertGreaterThan(p.waitSeconds, 0, "the consumer waited for item 0")
        XCTAssertLessThan(p.waitSeconds, 10)
    }

    /// The prefetched training batches equal direct `batch` calls, whatever the thread count.
    func testPrefetchedBatchesEqualDirectCalls() throws {
        let dir = try temporaryFolder(self)
        for i in 0..<5 { try writeFile(dir, "\(i % 2)/\(i).png", try pngBytes(testImage(24, 20, salt: i))) }
        let ds = try ImageFolderDataset(folder: dir.path, domainTag: 3)
        let order = EpochOrder(count: ds.count, seed: 4, tag: 3)
        for workers in [1, 4] {
            let p = Prefetcher.batches(
                ds, order: order, batchSize: 2, size: 8, seed: 4, rank: 1, worldSize: 2,
                depth: 2, workers: workers)
            for step in 0..<6 {
                let b = try XCTUnwrap(try p.next())
                let direct = try ds.batch(
                    order.batchItems(step: step, batchSize: 2, rank: 1, worldSize: 2),
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
