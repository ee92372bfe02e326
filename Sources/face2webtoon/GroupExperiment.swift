import ArgumentParser
import Dataset
import Engine
import Foundation
import Training
import UGATIT

/// `face2webtoon group-eval`: the attribute-preservation measure of the group experiment (docs/groups.md).
/// Trains (or loads) an attribute classifier on DATA/trainB only, translates DATA/testA with each checkpoint, and
/// prints per-group shares of translations whose predicted group is the source face's group.
struct GroupEval: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "group-eval",
        abstract: "Measure attribute preservation per group: a classifier trained on domain B judges translated testA faces.")

    @Option(help: "Data folder with trainB and testA in group folders 0..K-1.") var data: String
    @Option(parsing: .upToNextOption, help: "Checkpoints to evaluate.") var checkpoint: [String]
    @Option(help: "Classifier file (trained on DATA/trainB and saved here if missing).") var classifier: String
    @Option(name: .customLong("classifier-steps")) var classifierSteps = 2000
    @OptionGroup var process: RunOptions

    func run() throws {
        process.apply()
        let (c0, _) = try TrainingCheckpoint.peek(path: checkpoint[0])
        let size = c0.model.imageSize
        let clf: AttributeClassifier
        if FileManager.default.fileExists(atPath: classifier) {
            clf = try AttributeClassifier.load(classifier)
        } else {
            let groups = try FolderScan(folder: "\(data)/trainB").groupCount
            clf = AttributeClassifier(groups: groups, imageSize: size, seed: 1)
            try clf.train(folder: "\(data)/trainB", steps: classifierSteps) { print("[group-eval] \($0)") }
            try clf.save(classifier)
        }
        // the judge's own accuracy on held-out webtoon faces
        let testB = try ImageFolderDataset(folder: "\(data)/testB", domainTag: 1)
        let tb = try testB.batch((0..<testB.count).map { ($0, 0) }, seed: 0, train: false, size: size)
        let predicted = clf.predict(tb.images)
        let own = zip(predicted, tb.groups).filter { $0 == $1 }.count
        let perGroup = (0..<clf.groups).map { g -> String in
            let idx = tb.groups.indices.filter { tb.groups[$0] == g }
            return fmt(Double(idx.filter { predicted[$0] == g }.count) / Double(max(idx.count, 1)))
        }
        print("classifier_accuracy_testB=\(fmt(Double(own) / Double(testB.count))) per_group=\(perGroup.joined(separator: ","))")
        let testA = try ImageFolderDataset(folder: "\(data)/testA", domainTag: 0)
        let ta = try testA.batch((0..<testA.count).map { ($0, 0) }, seed: 0, train: false, size: size)
        for path in checkpoint {
            let (config, state) = try TrainingCheckpoint.peek(path: path)
            let model = UGATITModel(config: config.model, seed: 0)
            _ = try TrainingCheckpoint.load(path: path, into: model, step: nil)
            var hits = [Int](repeating: 0, count: clf.groups), totals = hits
            for i in 0..<testA.count {
                let x = Tensor(uninitialized: [1, 3, size, size])
                x.data.update(from: ta.images.data + i * x.count, count: x.count)
                let t = Tape(training: false)
                let y = model.genA2B(t, t.constant(x)).image.value
                let g = ta.groups[i]
                totals[g] += 1
                if clf.predict(y)[0] == g { hits[g] += 1 }
            }
            let shares = (0..<clf.groups).map { totals[$0] > 0 ? Double(hits[$0]) / Double(totals[$0]) : .nan }
            print("checkpoint=\(path) step=\(state.step) group_loss=\(config.weights.useGroupLoss) "
                  + shares.enumerated().map { "preserved_group\($0.offset)=\(fmt($0.element))" }.joined(separator: " ")
                  + " test_images_per_group=\(totals.map(String.init).joined(separator: ","))")
        }
    }
}
