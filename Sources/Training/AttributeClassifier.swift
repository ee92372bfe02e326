import Dataset
import Engine
import Foundation
import UGATIT

/// A small CNN that predicts an image's group (attribute) label, trained on one domain only. It is the independent
/// judge of the group experiment (docs/groups.md): does a translated face keep its group's attribute?
///   x [N, 3, S, S] -> 3 stride-2 4×4 convs (32, 64, 128 channels, LeakyReLU 0.2) -> global average -> linear -> [N, K]
public final class AttributeClassifier {
    public let store = ParameterStore()
    let convs: [Conv]
    let head: Linear
    public let groups: Int
    public let imageSize: Int

    public init(groups: Int, imageSize: Int, seed: UInt64) {
        self.groups = groups
        self.imageSize = imageSize
        var rng = RandomGenerator(seed: seed, stream: [0x434C_46])  // "CLF"
        var cin = 3
        var layers: [Conv] = []
        for (i, c) in [32, 64, 128].enumerated() {
            layers.append(
                Conv(
                    store, "conv\(i)", cin: cin, cout: c, kernel: 4, stride: 2, padding: 1, mode: .reflect, bias: true,
                    rng: &rng))
            cin = c
        }
        convs = layers
        head = Linear(store, "head", fin: cin, fout: groups, bias: true, rng: &rng)
        store.finalize()
    }

    public func logits(_ t: Tape, _ x: Var) -> Var {
        var h = x
        for c in convs { h = t.leakyRelu(c(t, h), slope: 0.2) }
        return head(t, t.globalAvgPool(h))
    }

    /// Trains on `folder` (group folders); returns the last loss.
    ///
    /// Images get the test transform (resize to S×S), as the faces it judges: the train transform's S+30 resize and
    /// S crop shows faces 1.5× larger, and a judge trained on those recognised glasses on test-sized webtoon faces
    /// 7-29% of the time.
    @discardableResult
    public func train(
        folder: String, steps: Int, batchSize: Int = 16, lr: Double = 1e-3, seed: UInt64 = 0,
        log: (String) -> Void = { _ in }
    ) throws -> Float {
        let d = try ImageFolderDataset(folder: folder, domainTag: 7)
        return try train(byGroup: d.indicesByGroup, steps: steps, batchSize: batchSize, lr: lr, seed: seed, log: log) {
            items, step in
            try d.batch(items.map { ($0, step) }, seed: seed, train: false, size: imageSize).images
        }
    }

    /// Trains on in-memory images with their groups (random horizontal flip, then the test transform).
    @discardableResult
    public func train(
        images: [RGBImage], groups labels: [Int], steps: Int, batchSize: Int = 16, lr: Double = 1e-3,
        seed: UInt64 = 0, log: (String) -> Void = { _ in }
    ) -> Float {
        precondition(images.count == labels.count, "\(images.count) images, \(labels.count) labels")
        var byGroup = [[Int]](repeating: [], count: groups)
        for (i, g) in labels.enumerated() { byGroup[g].append(i) }
        return train(byGroup: byGroup, steps: steps, batchSize: batchSize, lr: lr, seed: seed, log: log) {
            items, step in
            let x = Tensor(uninitialized: [items.count, 3, imageSize, imageSize])
            for (b, i) in items.enumerated() {
                var rng = RandomGenerator(seed: seed, stream: [0x434C_46, UInt64(step), UInt64(b)])
                let t = ImageTransforms.test(
                    rng.uniform() < 0.5 ? images[i].flippedHorizontally() : images[i], size: imageSize)
                (x.data + b * t.count).update(from: t.data, count: t.count)
            }
            return x
        }
    }

    /// Class-balanced batches (the few-shot groups are exactly the ones the judge must recognise); each image gets
    /// Gaussian noise of a random σ in [0, 0.15] so that the judge tolerates the artefacts of translated faces.
    private func train(
        byGroup: [[Int]], steps: Int, batchSize: Int, lr: Double, seed: UInt64, log: (String) -> Void,
        images: ([Int], Int) throws -> Tensor
    ) rethrows -> Float {
        let adam = Adam(store.parameters, lr: lr, beta1: 0.9, beta2: 0.999)
        var last: Float = .nan
        let groupsPresent = byGroup.indices.filter { !byGroup[$0].isEmpty }
        var rng = RandomGenerator(seed: seed, stream: [0x434C_46])  // "CLF"
        for s in 0..<steps {
            var items: [Int] = []
            var labels: [Int] = []
            for _ in 0..<batchSize {
                let g = groupsPresent[rng.int(groupsPresent.count)]
                items.append(byGroup[g][rng.int(byGroup[g].count)])
                labels.append(g)
            }
            let x = try images(items, s)
            let per = x.count / batchSize
            for b in 0..<batchSize {
                let sigma = rng.uniform(0, 0.15)
                for j in 0..<per { x[b * per + j] += sigma * rng.normal() }
            }
            store.zeroGrad()
            let t = Tape()
            let loss = t.crossEntropy(logits(t, t.constant(x)), labels: labels)
            t.backward(loss)
            adam.step()
            last = loss.value[0]
            if (s + 1) % 500 == 0 { log("classifier step \(s + 1)/\(steps) loss \(last)") }
        }
        return last
    }

    /// Predicted group of each image [N, 3, S, S].
    public func predict(_ images: Tensor) -> [Int] {
        let t = Tape(training: false)
        let z = logits(t, t.constant(images)).value
        return (0..<images.shape[0]).map { i in (0..<groups).max { z[i * groups + $0] < z[i * groups + $1] } ?? 0 }
    }

    public func save(_ path: String) throws {
        try AtomicFile.write(
            try SafeTensorsFile.encode(
                store.parameters.map { ($0.name, $0.value) },
                metadata: ["groups": "\(groups)", "img_size": "\(imageSize)"]), to: path)
    }

    public static func load(_ path: String) throws -> AttributeClassifier {
        let f: SafeTensorsFile
        do { f = try SafeTensorsFile(path: path) } catch {
            throw TrainingError.checkpoint(path: path, reason: "\(error)")
        }
        guard let g = f.metadata["groups"].flatMap(Int.init), let s = f.metadata["img_size"].flatMap(Int.init) else {
            throw TrainingError.checkpoint(
                path: path, reason: "not an attribute classifier (groups / img_size missing)")
        }
        let c = AttributeClassifier(groups: g, imageSize: s, seed: 0)
        for p in c.store.parameters { p.value.assign(try f.tensor(p.name)) }
        return c
    }
}
