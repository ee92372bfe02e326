import Engine
import Foundation
import UGATIT

/// Builds a model from a safetensors file holding UGATIT-pytorch weights under flattened official keys
/// (`genA2B.DownBlock.1.weight`, `disGA.model.1.weight_orig`, ...; `Scripts/torch_to_safetensors.py` makes one
/// from an official `.pt`). The architecture is inferred from the shapes; the image size of a light model cannot
/// be, so it comes from `imageSize` (default 256, the official default).
public enum TorchImport {
    public struct Report {
        public var config: ModelConfig
        /// Keys of our model that the file lacked (left at their initial values).
        public var missing: [String]
        /// Keys of the file that our model does not have.
        public var unused: [String]
    }

    /// - Throws: `TrainingError.checkpoint` naming the file and the offending key when shapes contradict each other.
    public static func load(
        path: String, imageSize: Int?, camUsesRawWeight: Bool = true, seed: UInt64 = 0
    ) throws -> (UGATITModel, Report) {
        let f: SafeTensorsFile
        do { f = try SafeTensorsFile(path: path) } catch {
            throw TrainingError.checkpoint(path: path, reason: "\(error)")
        }
        func shape(_ k: String) -> [Int]? { f.entry(k)?.shape }
        func fail(_ r: String) -> TrainingError { .checkpoint(path: path, reason: r) }
        guard let first = shape("genA2B.DownBlock.1.weight"), first.count == 4 else {
            throw fail("no genA2B.DownBlock.1.weight: not a U-GAT-IT generator (keys look like \(f.names.prefix(3)))")
        }
        let ch = first[0]
        var blocks = 0
        while shape("genA2B.UpBlock1_\(blocks + 1).conv1.weight") != nil { blocks += 1 }
        guard let fc0 = shape("genA2B.FC.0.weight"), fc0.count == 2 else { throw fail("genA2B.FC.0.weight missing") }
        let light = fc0[1] == 4 * ch
        var size = imageSize ?? 256
        if !light {
            // FC.0 input = S²·c/4 for S divisible by 4
            let s = Int((Double(fc0[1]) * 4 / Double(ch)).squareRoot().rounded())
            guard s * s * ch / 4 == fc0[1] else { throw fail("FC.0.weight \(fc0) fits no image size for ch \(ch)") }
            if let given = imageSize, given != s { throw fail("full model was trained at \(s)x\(s), not \(given)") }
            size = s
        }
        func layers(_ net: String) -> Int? {
            var n = 0
            while shape("\(net).model.\(3 * n + 1).weight_orig") != nil { n += 1 }
            return n > 0 ? n + 1 : nil
        }
        let groups = shape("disGB.group_classfier.weight_orig")?.first
        var config = ModelConfig(
            imageSize: size, ch: ch, blocks: blocks, light: light,
            globalLayers: layers("disGA"), localLayers: layers("disLA"), groups: groups,
            groupHeadsOnBothSides: groups != nil && shape("disGA.group_classfier.weight_orig") != nil,
            camUsesRawWeight: camUsesRawWeight)
        if layers("disGA") == nil { config.globalLayers = ModelConfig(imageSize: size).globalLayers }
        if layers("disLA") == nil { config.localLayers = ModelConfig(imageSize: size).localLayers }
        let problems = config.problems()
        guard problems.isEmpty else {
            throw fail("inferred configuration is impossible: " + problems.joined(separator: "; "))
        }
        let model = UGATITModel(config: config, seed: seed)
        var missing: [String] = []
        var known = Set<String>()
        for (name, t) in model.namedTensors {
            known.insert(name)
            guard let e = f.entry(name) else {
                missing.append(name)
                continue
            }
            guard e.shape == t.shape else {
                throw fail("\(name) has shape \(e.shape), the inferred model needs \(t.shape)")
            }
            t.assign(try f.tensor(name))
        }
        let unused = f.names.filter { !known.contains($0) }
        return (model, Report(config: config, missing: missing, unused: unused))
    }
}
