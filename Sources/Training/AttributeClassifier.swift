import Dataset
import Engine
import Foundation
import UGATIT

/// A small CNN that predicts an image's group (attribute) label, trained on one domain only. It is the independent
/// judge of the group experiment (docs/groups.md): does a translated face keep its group's attribute?
///   x [N, 3, S, S] -> 3 stride-2 4×4 convs (16, 32, 64 channels, LeakyReLU 0.2) -> global average -> linear -> [N, K]
public final class AttributeClassifier {
    public let store = ParameterStore()
    let convs: [Conv]
    let head: Linear
    public let groups: Int
    public let imageSize: Int

    public init(groups: Int, imageSize: Int, seed: UInt64) {
        self.groups = groups
        self.imageSize = imageSize
        var rng = RandomGenerator(seed: seed, stream: [0x434C_46])   // "CLF"
        var cin = 3
        var layers: [Conv] = []
        for (i, c) in [16, 32, 64].enumerated() {
            layers.append(Conv(store, "conv\(i)", cin: cin, cout: c, kernel: 4, stride: 2, padding: 1, mode: .reflect, bias: true, rng: &rng))
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

    /// Trains on `folder` (group folders) with the official train transform; returns the last loss.
    @discardableResult
    public func train(folder: String, steps: Int, batchSize: Int = 8, lr: Double = 1e-3, seed: UInt64 = 0,
                      log: (String) -> Void = { _ in }) throws -> Float {
        let d = try ImageFolderDataset(folder: folder, domainTag: 7)
        let adam = Adam(store.parameters, lr: lr, beta1: 0.9, beta2: 0.999)
        var last: Float = .nan
        // class-balanced batches: the few-shot groups are exactly the ones the judge must recognise
        let groupsPresent = d.indicesByGroup.indices.filter { !d.indicesByGroup[$0].isEmpty }
        var rng = RandomGenerator(seed: seed, stream: [0x434C_46])
        for s in 0..<steps {
            let items = (0..<batchSize).map { _ -> (index: Int, epoch: Int) in
                let list = d.indicesByGroup[groupsPresent[rng.int(groupsPresent.count)]]
                return (list[rng.int(list.count)], s)
            }
            let batch = try d.batch(items, seed: seed, train: true, size: imageSize)
            store.zeroGrad()
            let t = Tape()
            let loss = t.crossEntropy(logits(t, t.constant(batch.images)), labels: batch.groups)
            t.backward(loss)
            adam.step()
            last = loss.value[0]
            if (s + 1) % 100 == 0 { log("classifier step \(s + 1)/\(steps) loss \(last)") }
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
        try AtomicFile.write(try SafeTensorsFile.encode(store.parameters.map { ($0.name, $0.value) },
                                                        metadata: ["groups": "\(groups)", "img_size": "\(imageSize)"]), to: path)
    }

    public static func load(_ path: String) throws -> AttributeClassifier {
        let f = try SafeTensorsFile(path: path)
        guard let g = f.metadata["groups"].flatMap(Int.init), let s = f.metadata["img_size"].flatMap(Int.init) else {
            throw TrainingError.checkpoint(path: path, reason: "not an attribute classifier (groups / img_size missing)")
        }
        let c = AttributeClassifier(groups: g, imageSize: s, seed: 0)
        for p in c.store.parameters { p.value.assign(try f.tensor(p.name)) }
        return c
    }
}
