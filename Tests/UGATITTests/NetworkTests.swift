import Engine
import UGATIT
import XCTest

/// Architecture facts from the specification (section A.5 counts and F shapes).
final class NetworkTests: XCTestCase {
    func count(_ build: (ParameterStore, inout RandomGenerator) -> Void) -> (params: Int, keys: [String]) {
        let store = ParameterStore()
        var rng = RandomGenerator(seed: 1)
        build(store, &rng)
        return (store.parameterCount, store.parameters.map(\.name) + store.buffers.map(\.name))
    }

    func testDefaultParameterCountsMatchSpec() {
        let g = count { s, r in _ = ResnetGenerator(s, prefix: "g", config: GeneratorConfig(), rng: &r) }
        XCTAssertEqual(g.params, 10_589_888)
        XCTAssertEqual(g.keys.count, 44)
        XCTAssertEqual(GeneratorConfig().parameterCount, 10_589_888)
        let dg = count { s, r in _ = Discriminator(s, prefix: "d", config: DiscriminatorConfig(layers: 7), rng: &r) }
        XCTAssertEqual(dg.params, 53_130_176)
        let dl = count { s, r in _ = Discriminator(s, prefix: "d", config: DiscriminatorConfig(layers: 5), rng: &r) }
        XCTAssertEqual(dl.params, 3_290_560)
        // Face2Webtoon group heads (4 groups): 53,138,372 and 3,292,612; 39 and 31 keys with buffers
        let fg = count { s, r in
            _ = Discriminator(s, prefix: "d", config: DiscriminatorConfig(layers: 7, groups: 4), rng: &r)
        }
        XCTAssertEqual(fg.params, 53_138_372)
        XCTAssertEqual(fg.keys.count, 39)
        let fl = count { s, r in
            _ = Discriminator(s, prefix: "d", config: DiscriminatorConfig(layers: 5, groups: 4), rng: &r)
        }
        XCTAssertEqual(fl.params, 3_292_612)
        XCTAssertEqual(fl.keys.count, 31)
        XCTAssertEqual(DiscriminatorConfig(layers: 7).parameterCount, 53_130_176)
        XCTAssertEqual(DiscriminatorConfig(layers: 5, groups: 4).parameterCount, 3_292_612)
    }

    func testFullGeneratorCount() {
        // closed form only at c = 64 (the 268M-parameter FC.0 would need 2 GB here); built at c = 8, S = 128
        XCTAssertEqual(GeneratorConfig(light: false).parameterCount, 278_959_808)
        let g = count { s, r in
            _ = ResnetGenerator(
                s, prefix: "g", config: GeneratorConfig(ngf: 8, blocks: 2, imageSize: 128, light: false), rng: &r)
        }
        XCTAssertEqual(g.params, 1_141_592)
        let l = count { s, r in
            _ = ResnetGenerator(
                s, prefix: "g", config: GeneratorConfig(ngf: 8, blocks: 2, imageSize: 128, light: true), rng: &r)
        }
        XCTAssertEqual(l.params, 94_040)
    }

    func testOfficialKeyNames() {
        let g = count { s, r in
            _ = ResnetGenerator(s, prefix: "genA2B", config: GeneratorConfig(ngf: 4, blocks: 2, imageSize: 32), rng: &r)
        }
        for k in [
            "genA2B.DownBlock.1.weight", "genA2B.DownBlock.5.weight", "genA2B.DownBlock.9.weight",
            "genA2B.DownBlock.13.conv_block.5.weight", "genA2B.UpBlock1_2.norm2.rho", "genA2B.UpBlock2.8.gamma",
            "genA2B.UpBlock2.11.weight", "genA2B.FC.2.weight", "genA2B.conv1x1.bias", "genA2B.gap_fc.weight",
        ] {
            XCTAssertTrue(g.keys.contains(k), k)
        }
        XCTAssertEqual(g.keys.first, "genA2B.gap_fc.weight")
        let d = count { s, r in
            _ = Discriminator(s, prefix: "disGA", config: DiscriminatorConfig(ndf: 4, layers: 7), rng: &r)
        }
        for k in [
            "disGA.model.1.weight_orig", "disGA.model.1.weight_u", "disGA.model.16.weight_v", "disGA.model.16.bias",
            "disGA.conv.weight_orig", "disGA.gap_fc.weight_u", "disGA.conv1x1.weight",
        ] {
            XCTAssertTrue(d.keys.contains(k), k)
        }
    }

    func testShapesAtSmallConfig() {
        // spec F: c = 8, n = 2, S = 128: G image [B,3,128,128], heatmap [B,1,32,32]; global D (L=7) logits 2x2,
        // heatmap 3x3; local D (L=5) logits 14x14, heatmap 15x15
        let config = ModelConfig(imageSize: 128, ch: 8, blocks: 2, globalLayers: 7, localLayers: 5, groups: 4)
        let m = UGATITModel(config: config, seed: 0)
        var rng = RandomGenerator(seed: 3)
        let t = Tape()
        let x = t.constant(rng.uniformTensor([2, 3, 128, 128], -1, 1))
        let g = m.genA2B(t, x)
        XCTAssertEqual(g.image.shape, [2, 3, 128, 128])
        XCTAssertEqual(g.camLogit.shape, [2, 2])
        XCTAssertEqual(g.heatmap.shape, [2, 1, 32, 32])
        XCTAssertTrue(g.image.value.array.allSatisfy { $0 >= -1 && $0 <= 1 })
        let dg = m.disGB(t, x)
        let dl = m.disLB(t, x)
        XCTAssertEqual(dg.logit.shape, [2, 1, 2, 2])
        XCTAssertEqual(dg.heatmap.shape, [2, 1, 3, 3])
        XCTAssertEqual(dg.groupLogit?.shape, [2, 4])
        XCTAssertEqual(dl.logit.shape, [2, 1, 14, 14])
        XCTAssertEqual(dl.heatmap.shape, [2, 1, 15, 15])
        XCTAssertNil(m.disGA(t, x).groupLogit, "A-side discriminators have no group head by default")
    }

    func testDepthRuleAndImpossibleCombinations() {
        XCTAssertEqual(ModelConfig(imageSize: 256).globalLayers, 7)
        XCTAssertEqual(ModelConfig(imageSize: 256).localLayers, 5)
        XCTAssertEqual(ModelConfig(imageSize: 128).globalLayers, 6)
        XCTAssertEqual(ModelConfig(imageSize: 128).localLayers, 4)
        for s in [64, 96, 128, 256] { XCTAssertEqual(ModelConfig(imageSize: s).problems(), [], "size \(s)") }
        // the original's hard-coded global depth 7 cannot judge 64x64 (spec A.3)
        let bad = ModelConfig(imageSize: 64, globalLayers: 7)
        XCTAssertEqual(bad.problems().count, 1)
        XCTAssertTrue(
            bad.problems()[0].contains("global discriminator with 7 layers cannot judge 64x64"), bad.problems()[0])
        XCTAssertNil(DiscriminatorConfig(layers: 7).logitSide(imageSize: 64))
        XCTAssertEqual(DiscriminatorConfig(layers: 7).logitSide(imageSize: 256), 6)
        XCTAssertEqual(DiscriminatorConfig(layers: 5).logitSide(imageSize: 256), 30)
        XCTAssertFalse(ModelConfig(imageSize: 30).problems().isEmpty)
    }

    func testRhoClipAndInitialValues() {
        let m = UGATITModel(config: ModelConfig(imageSize: 32, ch: 4, blocks: 1), seed: 0)
        let rhos = m.rhoParameters
        XCTAssertEqual(rhos.count, 2 * (2 + 2))  // per generator: 2 adaILN + 2 ILN
        XCTAssertTrue(m.generators["genA2B.UpBlock1_1.norm1.rho"]!.value.array.allSatisfy { $0 == 0.9 })
        XCTAssertTrue(m.generators["genA2B.UpBlock2.3.rho"]!.value.array.allSatisfy { $0 == 0 })
        rhos[0].value[0] = 1.7
        rhos[1].value[0] = -0.2
        m.clipRho()
        XCTAssertEqual(rhos[0].value[0], 1)
        XCTAssertEqual(rhos[1].value[0], 0)
    }

    func testLearningRateScheduleClosedForm() {
        let o = OptimizerConfig()
        XCTAssertEqual(o.learningRate(step: 500_000, iterations: 1_000_000), 1e-4)
        XCTAssertEqual(o.learningRate(step: 500_001, iterations: 1_000_000), 9.99998e-05, accuracy: 1e-12)
        XCTAssertEqual(o.learningRate(step: 750_000, iterations: 1_000_000), 5e-05, accuracy: 1e-12)
        XCTAssertEqual(o.learningRate(step: 1_000_000, iterations: 1_000_000), 0)
    }
}
