import Distributed
import Foundation
import UGATIT
import Engine
import XCTest

@testable import Training

/// The gradient all-reduce's bucket layout around parameters that go by the low-rank exchange.
final class DataParallelTests: XCTestCase {
    func testSegmentsLeaveOutTheExcludedRanges() {
        XCTAssertEqual(ShardLayout.segments(count: 10, excluding: []).map { [$0.0, $0.1] }, [[0, 10]])
        XCTAssertEqual(
            ShardLayout.segments(count: 10, excluding: [(6, 2), (0, 3)]).map { [$0.0, $0.1] }, [[3, 3], [8, 2]])
        XCTAssertEqual(ShardLayout.segments(count: 4, excluding: [(0, 4)]).map { [$0.0, $0.1] }, [])
    }

    /// On one rank, `average(lowRank:)` forms the factor product into the gradient and leaves the rest alone.
    func testOneRankLowRankAverageFormsTheGradient() {
        let store = ParameterStore()
        let a = store.add("a", Tensor(shape: [2], [1, 2]))
        let w = store.add("w", Tensor(zeros: [2, 3]))
        store.finalize()
        a.grad.assign(Tensor(shape: [2], [0.5, -1]))
        let f = LowRankGradient(inFeatures: 3, outFeatures: 2)
        let t = Tape()
        let y = t.linear(t.input(Tensor(shape: [1, 3], [1, 2, 3])), t.param(w), lowRank: f)
        t.backward(y, seed: Tensor(shape: [1, 2], [1, -2]))
        var values: [Float] = [7]
        let ok = DataParallel(comm: SingleRankCommunicator()).average(
            store, values: &values, operation: "g", lowRank: [(w, f)])
        XCTAssertTrue(ok)
        XCTAssertEqual(values, [7])
        XCTAssertEqual(a.grad.array, [0.5, -1])
        XCTAssertEqual(w.grad.array, [1, 2, 3, -2, -4, -6])  // dyᵀ·x
        XCTAssertEqual(f.rows, 0, "factors are consumed")
    }
}

/// A communicator whose float all-reduces take `delay` seconds, as a slow network would. With `ranks` > 1 it is rank
/// 0 of that many ranks that all hold the same values: an all-reduce multiplies by `ranks` (the sum over them).
final class SlowCommunicator: Communicator, @unchecked Sendable {
    let inner = SingleRankCommunicator()
    let delay: Double
    let ranks: Int
    init(delay: Double, ranks: Int = 1) {
        self.delay = delay
        self.ranks = ranks
    }
    var rank: Int { 0 }
    var worldSize: Int { ranks }
    var processorName: String { inner.processorName }
    func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws {
        let before = relaxedNow
        Thread.sleep(forTimeInterval: delay)
        for i in buffer.indices { buffer[i] *= Float(ranks) }
        lock.lock()
        polling.append((before, relaxed))
        lock.unlock()
    }
    /// `setRelaxedPolling` as each float all-reduce found it when it started and when it ended, in order.
    private(set) var polling: [(start: Bool, end: Bool)] = []
    private var relaxed = false
    private let lock = NSLock()
    func setRelaxedPolling(_ on: Bool) {
        lock.lock()
        relaxed = on
        lock.unlock()
    }
    var relaxedNow: Bool {
        lock.lock()
        defer { lock.unlock() }
        return relaxed
    }
    func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Double>) throws {
        for i in buffer.indices { buffer[i] *= Double(ranks) }
    }
    // only the all-reduces play N ranks
    func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int) throws {
        precondition(ranks == 1, "SlowCommunicator: broadcast of \(ranks) ranks not modelled")
        try inner.broadcast(buffer, root: root)
    }
    func gather(_ block: UnsafeRawBufferPointer, into receive: UnsafeMutableRawBufferPointer?, root: Int) throws {
        precondition(ranks == 1, "SlowCommunicator: gather of \(ranks) ranks not modelled")
        try inner.gather(block, into: receive, root: root)
    }
    func allGather(_ block: UnsafeRawBufferPointer, into receive: UnsafeMutableRawBufferPointer) throws {
        precondition(ranks == 1, "SlowCommunicator: all-gather of \(ranks) ranks not modelled")
        try inner.allGather(block, into: receive)
    }
    func barrier() throws {}
    func finalize() throws {}
    func abort(code: Int32, message: String) -> Never { inner.abort(code: code, message: message) }
}

/// The overlapped all-reduce against a deliberately slow communicator: the first bucket starts while the
/// discriminators' backward still runs, the buckets go from the last to the first, and the gradients equal the
/// path without overlap bit for bit.
final class OverlapTests: XCTestCase {
    /// One step's D phase at 32 px against `comm`, 4 KB buckets, finished. Backward is slowed (2 ms after each
    /// report), so that the communication thread's wake-up on a busy machine cannot decide the outcome.
    private func slowedDPhase(_ comm: Communicator, overlap: Bool) -> (PhaseAverage, UGATITModel) {
        let model = UGATITModel(
            config: ModelConfig(imageSize: 32, ch: 4, blocks: 1, globalLayers: 4, localLayers: 3), seed: 5)
        let step = UGATITStep(model: model)
        var rng = RandomGenerator(seed: 8)
        let (a, b) = (rng.normalTensor([1, 3, 32, 32]), rng.normalTensor([1, 3, 32, 32]))
        let avg = DataParallel(comm: comm, bucketBytes: 4096).begin(model.discriminators, operation: "d", overlap: overlap)
        step.onGradientFinal = { p in
            avg.gradientFinal(p)
            Thread.sleep(forTimeInterval: 0.002)
        }
        var values = [step.discriminatorGradients(realA: a, realB: b)[LossKey.dLoss]!]
        XCTAssertTrue(avg.finish(values: &values))
        return (avg, model)
    }

    func testFirstBucketStartsDuringBackwardAndGradientsMatch() throws {
        var grads: [[Float]] = []
        for overlap in [true, false] {
            let (avg, model) = slowedDPhase(SlowCommunicator(delay: 0.02), overlap: overlap)
            let t = avg.timeline
            XCTAssertGreaterThanOrEqual(t.count, 8, "small buckets: several per discriminator")
            let starts = t.map(\.start)
            XCTAssertEqual(starts.indices.sorted { starts[$0] < starts[$1] }, Array(t.indices.reversed()))
            for x in t { XCTAssertLessThanOrEqual(x.ready, x.start + 1e-9) }
            if overlap {
                XCTAssertLessThan(t.last!.start, avg.finishCalled, "the first bucket started during backward")
                XCTAssertLessThan(t.last!.ready, avg.finishCalled)
            } else {
                XCTAssertGreaterThanOrEqual(t.last!.start, avg.finishCalled)
            }
            grads.append(model.discriminators.grads.array)
        }
        XCTAssertEqual(grads[0], grads[1])
    }

    /// The collectives poll lazily while the communication thread's buckets are hidden behind backward, at full speed
    /// while the training thread waits for them (`finish`), and never without overlap or once the phase is done.
    func testPollingIsRelaxedOnlyWhileNobodyWaits() throws {
        for overlap in [true, false] {
            let comm = SlowCommunicator(delay: 0.02)
            _ = slowedDPhase(comm, overlap: overlap)
            let polling = comm.polling
            XCTAssertFalse(comm.relaxedNow, "full speed once the phase is done (overlap \(overlap))")
            if overlap {
                XCTAssertTrue(polling.contains { $0.start }, "relaxed beside backward: \(polling)")
                XCTAssertTrue(polling.contains { !$0.end }, "full speed while finish waits: \(polling)")
            } else {
                XCTAssertFalse(polling.contains { $0.start || $0.end }, "the training thread waits for every bucket")
            }
        }
        // a communication thread that waits for its buckets runs no collective: a collective of the training
        // thread's own meanwhile (the sharded optimizer's parameter all-gather) must not nap lazily
        let comm = SlowCommunicator(delay: 0.02)
        let model = UGATITModel(
            config: ModelConfig(imageSize: 32, ch: 4, blocks: 1, globalLayers: 4, localLayers: 3), seed: 5)
        let avg = DataParallel(comm: comm, bucketBytes: 4096).begin(model.generators, operation: "g", overlap: true)
        Thread.sleep(forTimeInterval: 0.05)
        XCTAssertFalse(comm.relaxedNow, "relaxed with no collective in flight")
        var values: [Float] = [1]
        XCTAssertTrue(avg.finish(values: &values))
    }

    /// What `finish` waits for is kept per phase (`exposedSecondsByOperation`, bench's `comm_exposed_d_s` and
    /// `comm_exposed_g_s`), and the phases add up to `exposedSeconds`.
    func testExposedSecondsAreKeptPerPhase() throws {
        let model = UGATITModel(
            config: ModelConfig(imageSize: 32, ch: 4, blocks: 1, globalLayers: 4, localLayers: 3), seed: 5)
        let parallel = DataParallel(comm: SlowCommunicator(delay: 0.01), bucketBytes: 1 << 20)
        for (name, store) in [("d", model.discriminators), ("g", model.generators), ("d", model.discriminators)] {
            let avg = parallel.begin(store, operation: name, overlap: true)
            var values: [Float] = [1]
            XCTAssertTrue(avg.finish(values: &values))  // no gradient reported: every bucket goes once finish is called
        }
        let (d, g) = (parallel.exposedSecondsByOperation["d"] ?? 0, parallel.exposedSecondsByOperation["g"] ?? 0)
        XCTAssertGreaterThanOrEqual(d, 2 * 0.02, "two D phases, each at least one bucket and the values: \(d)")
        XCTAssertGreaterThanOrEqual(g, 0.02, "\(g)")
        XCTAssertEqual(d + g, parallel.exposedSeconds, accuracy: 1e-12)
        XCTAssertEqual(Set(parallel.exposedSecondsByOperation.keys), ["d", "g"])
    }

    /// `finishEarly` hands out genB2A's averaged gradients (its bucket goes first, the flag before genA2B's) while
    /// genA2B's bucket is still on the wire; `finish` then averages the rest, and scales nothing twice: with two
    /// ranks of equal gradients every averaged gradient equals this rank's own, bit for bit.
    func testGenB2AIsHandedOutWhileGenA2BsBucketIsOnTheWire() throws {
        let config = ModelConfig(imageSize: 32, ch: 4, blocks: 1, globalLayers: 4, localLayers: 3)
        var rng = RandomGenerator(seed: 8)
        let (a, b) = (rng.normalTensor([1, 3, 32, 32]), rng.normalTensor([1, 3, 32, 32]))
        func gradients(_ parallel: DataParallel?) throws -> [Float] {
            let model = UGATITModel(config: config, seed: 5)
            let step = UGATITStep(model: model)
            step.discriminatorGradients(realA: a, realB: b)
            step.applyDiscriminator()
            guard let parallel else {
                step.generatorGradients(realA: a, realB: b)
                return model.generators.grads.array
            }
            let avg = parallel.begin(model.generators, operation: "g", overlap: true)
            XCTAssertEqual(avg.timeline.count, 2, "one bucket per generator")
            XCTAssertTrue(avg.canFinishEarly)
            step.onGradientFinal = { avg.gradientFinal($0) }
            var values = [step.generatorGradients(realA: a, realB: b)[LossKey.gLoss]!]
            avg.submit(values: values)
            XCTAssertTrue(avg.finishEarly(step.genB2AParameters))
            avg.cond.lock()
            let (genA2BReduced, genB2AReduced) = (avg.reduced[0], avg.reduced[1])
            avg.cond.unlock()
            XCTAssertTrue(genB2AReduced)
            XCTAssertFalse(genA2BReduced, "genA2B's bucket was still on the wire")
            XCTAssertTrue(avg.finish(values: &values))
            return model.generators.grads.array
        }
        let own = try gradients(nil)
        let averaged = try gradients(DataParallel(comm: SlowCommunicator(delay: 0.3, ranks: 2), bucketBytes: 1 << 26))
        XCTAssertEqual(own.count, averaged.count)
        XCTAssertEqual(zip(own, averaged).filter { $0 != $1 }.count, 0)
        XCTAssertGreaterThan(own.filter { $0 != 0 }.count, own.count / 2)
    }
}
