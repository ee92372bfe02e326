import ArgumentParser
import Dataset
import Engine
import Foundation
import Training
import UGATIT

/// `face2webtoon group-eval`: the attribute-preservation measure of the group experiment (docs/groups.md).
/// A classifier trained on domain-B (webtoon) faces only judges the translations of domain-A faces: per group, the
/// share of translations whose predicted group is the source face's group.
///
/// Judge and evaluation faces come from DATA/trainB, DATA/testB and DATA/testA, or, with `--demo-judge-images` and
/// `--demo-eval-images`, are freshly drawn demo faces (balanced over the groups, from demo splits 2 and 3, which no
/// `train --demo` data set contains).
struct GroupEval: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "group-eval",
        abstract:
            "Measure attribute preservation per group: a classifier trained on domain B judges translated A faces.")

    @Option(
        help: "Data folder with trainB, testB and testA in group folders 0..K-1 (not needed with the --demo options).")
    var data: String?
    @Option(parsing: .upToNextOption, help: "Checkpoints to evaluate.") var checkpoint: [String]
    @Option(help: "Classifier file (trained and saved here if missing).") var classifier: String
    @Option(name: .customLong("classifier-steps"), help: "Adam steps when the classifier is trained here.")
    var classifierSteps = 3000
    @Option(
        name: .customLong("demo-judge-images"), help: "Train the judge on this many fresh demo webtoon faces per group."
    )
    var demoJudgeImages: Int?
    @Option(name: .customLong("demo-eval-images"), help: "Evaluate on this many fresh demo faces per group and domain.")
    var demoEvalImages: Int?
    @OptionGroup var process: RunOptions

    func validate() throws {
        if data == nil && (demoJudgeImages == nil || demoEvalImages == nil) {
            throw ValidationError("give --data, or both --demo-judge-images and --demo-eval-images")
        }
        for (flag, value) in [
            ("--demo-judge-images", demoJudgeImages), ("--demo-eval-images", demoEvalImages),
            ("--classifier-steps", classifierSteps),
        ] {
            if let v = value, !(1...1_000_000).contains(v) { throw ValidationError("\(flag) \(v): expected 1...1000000") }
        }
    }

    /// `perGroup` fresh demo faces of each of the 4 groups in `domain`, rendered as `train --demo` draws its data
    /// (side S + 30), with their groups.
    static func demoFaces(
        split: UInt64, domain: UInt64, perGroup: Int, imageSize: Int
    ) -> (images: [RGBImage], groups: [Int]) {
        let n = 4 * perGroup
        let box = UnsafeMutableBufferPointer<RGBImage?>.allocate(capacity: n)
        box.initialize(repeating: nil)
        defer { box.deallocate() }
        DispatchQueue.concurrentPerform(iterations: n) { i in
            box[i] = DemoData.face(
                seed: 0, split: split, domain: domain, index: i, group: i % 4,
                size: imageSize + ImageTransforms.cropMargin)
        }
        return (box.map { $0! }, (0..<n).map { $0 % 4 })
    }

    /// Test-transformed images [N, 3, S, S] and their groups.
    func evaluationSet(domain: UInt64, size: Int) throws -> (images: Tensor, groups: [Int]) {
        if let m = demoEvalImages {
            let (images, groups) = Self.demoFaces(split: 3, domain: domain, perGroup: m, imageSize: size)
            let x = Tensor(uninitialized: [images.count, 3, size, size])
            for (i, img) in images.enumerated() {
                let t = ImageTransforms.test(img, size: size)
                (x.data + i * t.count).update(from: t.data, count: t.count)
            }
            return (x, groups)
        }
        let folder = "\(data!)/\(domain == 0 ? "testA" : "testB")"
        let d = try ImageFolderDataset(folder: folder, domainTag: domain)
        let b = try d.batch((0..<d.count).map { ($0, 0) }, seed: 0, train: false, size: size)
        return (b.images, b.groups)
    }

    func run() throws {
        process.apply()
        let (c0, _) = try TrainingCheckpoint.peek(path: checkpoint[0])
        let size = c0.model.imageSize
        let clf: AttributeClassifier
        if FileManager.default.fileExists(atPath: classifier) {
            clf = try AttributeClassifier.load(classifier)
            guard clf.imageSize == size else {
                throw ValidationError(
                    "--classifier \(classifier): judges \(clf.imageSize)px images, the checkpoint makes \(size)px; "
                        + "give another file (a missing one is trained here)")
            }
        } else if let n = demoJudgeImages {
            let (images, groups) = Self.demoFaces(split: 2, domain: 1, perGroup: n, imageSize: size)
            clf = AttributeClassifier(groups: 4, imageSize: size, seed: 1)
            clf.train(images: images, groups: groups, steps: classifierSteps) { print("[group-eval] \($0)") }
            try clf.save(classifier)
        } else {
            let groups = try FolderScan(folder: "\(data!)/trainB").groupCount
            clf = AttributeClassifier(groups: groups, imageSize: size, seed: 1)
            try clf.train(folder: "\(data!)/trainB", steps: classifierSteps) { print("[group-eval] \($0)") }
            try clf.save(classifier)
        }
        // counts[g][p]: images of group g predicted as group p; the per-group share kept is counts[g][g] / row sum
        func counts(_ predicted: [Int], _ truth: [Int]) throws -> [[Int]] {
            if let g = truth.max(), g >= clf.groups {  // a classifier trained on other data
                throw ValidationError(
                    "--classifier \(classifier): judges \(clf.groups) groups, but the evaluation faces have group "
                        + "\(g); give another file (a missing one is trained here on this data)")
            }
            var c = [[Int]](repeating: [Int](repeating: 0, count: clf.groups), count: clf.groups)
            for (p, g) in zip(predicted, truth) { c[g][p] += 1 }
            return c
        }
        func shares(_ c: [[Int]]) -> [Double] {
            c.indices.map { g in c[g].reduce(0, +) == 0 ? .nan : Double(c[g][g]) / Double(c[g].reduce(0, +)) }
        }
        // the judge's own accuracy on held-out webtoon faces
        let evalB = try evaluationSet(domain: 1, size: size)
        let own = clf.predict(evalB.images)
        print(
            "classifier_accuracy_B=\(fmt(Double(zip(own, evalB.groups).filter { $0 == $1 }.count) / Double(own.count))) "
                + "per_group=\(shares(try counts(own, evalB.groups)).map(fmt).joined(separator: ","))")
        let evalA = try evaluationSet(domain: 0, size: size)
        let n = evalA.groups.count
        let per = 3 * size * size
        var sums: [Bool: (count: Int, kept: [Double])] = [:]
        for path in checkpoint {
            let (config, state) = try TrainingCheckpoint.peek(path: path)
            let model = UGATITModel(config: config.model, seed: 0)
            _ = try TrainingCheckpoint.load(path: path, into: model, step: nil)
            var predicted: [Int] = []
            for start in stride(from: 0, to: n, by: 16) {
                let m = min(16, n - start)
                let x = Tensor(uninitialized: [m, 3, size, size])
                x.data.update(from: evalA.images.data + start * per, count: m * per)
                let t = Tape(training: false)
                predicted += clf.predict(model.genA2B(t, t.constant(x)).image.value)
            }
            let c = try counts(predicted, evalA.groups)
            let kept = shares(c)
            let prior = sums[config.weights.useGroupLoss] ?? (0, [Double](repeating: 0, count: clf.groups))
            sums[config.weights.useGroupLoss] = (prior.count + 1, zip(prior.kept, kept).map { $0 + $1 })
            print(
                "checkpoint=\(path) step=\(state.step) group_loss=\(config.weights.useGroupLoss) "
                    + kept.enumerated().map { "preserved_group\($0.offset)=\(fmt($0.element))" }.joined(separator: " ")
                    + " predicted_by_group=\(c.map { $0.map(String.init).joined(separator: "/") }.joined(separator: ","))"
                    + " images_per_group=\(c.map { String($0.reduce(0, +)) }.joined(separator: ","))")
        }
        // GAN checkpoints oscillate: the experiment's figure is the mean over the checkpoints given
        for (on, s) in sums.sorted(by: { $0.key && !$1.key }) {
            print(
                "mean group_loss=\(on) checkpoints=\(s.count) "
                    + s.kept.enumerated().map { "preserved_group\($0.offset)=\(fmt($0.element / Double(s.count)))" }
                    .joined(separator: " "))
        }
    }
}
