import Engine
import UGATIT
import XCTest

/// The G phase continues the tape on which the D phase recorded genA2B(realA) and genB2A(realB). That must change
/// nothing: G gradients and losses equal, bit for bit, those of a G phase that recomputes the translations (run by a
/// second UGATITStep on the same model, which has no translations to reuse).
final class TranslationReuseTests: XCTestCase {
    let config = ModelConfig(imageSize: 32, ch: 4, blocks: 1, globalLayers: 4, localLayers: 3, groups: 2)

    /// D phase and update on (a, b) or on other images (c, d), then the G phase on (a, b) by the same step object or
    /// by a fresh one.
    func gPhase(dPhaseOn other: Bool, freshStep: Bool, frozen: Bool) -> (grads: [Float], loss: Float) {
        var rng = RandomGenerator(seed: 9)
        let a = rng.uniformTensor([1, 3, 32, 32], -1, 1)
        let b = rng.uniformTensor([1, 3, 32, 32], -1, 1)
        let c = rng.uniformTensor([1, 3, 32, 32], -1, 1)
        let d = rng.uniformTensor([1, 3, 32, 32], -1, 1)
        let m = UGATITModel(config: config, seed: 3)
        let s = UGATITStep(model: m)
        if frozen { s.frozenGenerator = Array(m.generators.parameters.prefix(3)) }
        s.discriminatorGradients(realA: other ? c : a, realB: other ? d : b, labelsA: [1], labelsB: [1])
        s.applyDiscriminator()
        let g = freshStep ? UGATITStep(model: m) : s
        g.frozenGenerator = s.frozenGenerator
        let v = g.generatorGradients(realA: a, realB: b, labelsA: [1], labelsB: [1])
        return (m.generators.grads.array, v["g.loss"]!)
    }

    func differences(_ x: [Float], _ y: [Float]) -> Int { zip(x, y).filter { $0 != $1 }.count }

    func testReusedTranslationsGiveIdenticalGeneratorGradients() {
        for frozen in [false, true] {
            let recomputed = gPhase(dPhaseOn: false, freshStep: true, frozen: frozen)
            let reused = gPhase(dPhaseOn: false, freshStep: false, frozen: frozen)
            XCTAssertEqual(recomputed.loss, reused.loss, "frozen \(frozen)")
            XCTAssertEqual(differences(recomputed.grads, reused.grads), 0, "frozen \(frozen)")
            XCTAssertGreaterThan(reused.grads.filter { $0 != 0 }.count, reused.grads.count / 2)
        }
    }

    func testTranslationsOfOtherImagesAreNotReused() {
        // a D phase on (c, d), then a G phase on (a, b): its translations must be of (a, b)
        let g = gPhase(dPhaseOn: true, freshStep: false, frozen: false)
        let reference = gPhase(dPhaseOn: true, freshStep: true, frozen: false)
        XCTAssertEqual(g.loss, reference.loss)
        XCTAssertEqual(differences(g.grads, reference.grads), 0)
    }

    /// Two steps on (a, b) then (c, d), with the generators' update of the first in two parts (genB2A's ahead,
    /// `applyGenB2AAhead`) and the second step's genB2A(d) recorded in between (`translateAhead`), against the same
    /// two steps in one piece: every loss and parameter bit for bit, with parameters of both generators frozen too,
    /// and on 2 threads (where the chains run side by side and OpenBLAS would use both threads for a GEMM outside
    /// them). And genB2A's update is not taken twice: a second Adam step on it would move it.
    func testGenB2AUpdatedAndTranslatedAheadGivesTheSameSteps() {
        // on 2 threads at 64 px, ch 16: products large enough for OpenBLAS to split them over threads if called
        // outside the chains
        let large = ModelConfig(imageSize: 64, ch: 16, blocks: 1, globalLayers: 4, localLayers: 3, groups: 2)
        for (frozen, threads) in [(false, 1), (true, 1), (true, 2)] {
            Runtime.configure(threads: threads)
            defer { Runtime.configure(threads: 1) }
            let config = threads == 1 ? config : large
            let size = config.imageSize
            var rng = RandomGenerator(seed: 4)
            let (a, b, c, d) = (
                rng.uniformTensor([1, 3, size, size], -1, 1), rng.uniformTensor([1, 3, size, size], -1, 1),
                rng.uniformTensor([1, 3, size, size], -1, 1), rng.uniformTensor([1, 3, size, size], -1, 1)
            )
            func run(ahead: Bool) -> (losses: [String: Float], parameters: [Float], usedAhead: Bool) {
                let m = UGATITModel(config: config, seed: 3)
                let s = UGATITStep(model: m)
                if frozen { s.frozenGenerator = Array(m.generators.parameters.prefix(3)) + s.genB2AParameters.prefix(3) }
                s.discriminatorGradients(realA: a, realB: b, labelsA: [1], labelsB: [0])
                s.applyDiscriminator()
                s.generatorGradients(realA: a, realB: b, labelsA: [1], labelsB: [0])
                if ahead {
                    s.applyGenB2AAhead()
                    s.translateAhead(realB: d)
                }
                s.applyGenerator()
                var v = s.discriminatorGradients(realA: c, realB: d, labelsA: [0], labelsB: [1])
                let used = s.usedTranslationAhead
                s.applyDiscriminator()
                v.merge(s.generatorGradients(realA: c, realB: d, labelsA: [0], labelsB: [1])) { $1 }
                s.applyGenerator()
                return (v, m.generators.values.array + m.discriminators.values.array, used)
            }
            let (plain, split) = (run(ahead: false), run(ahead: true))
            XCTAssertTrue(split.usedAhead, "frozen \(frozen): the D phase took genB2A(d) from translateAhead")
            XCTAssertFalse(plain.usedAhead)
            XCTAssertEqual(plain.losses, split.losses, "frozen \(frozen), \(threads) threads")
            XCTAssertEqual(differences(plain.parameters, split.parameters), 0, "frozen \(frozen), \(threads) threads")
        }
    }
}
