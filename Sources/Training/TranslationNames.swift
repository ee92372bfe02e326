import Foundation

/// Output paths for `translate`: the input tree is mirrored under the output folder, and no two inputs of one run
/// get the same output file.
///
/// `sub/x.jpg` becomes `sub/x.png` (and `sub/x_heatmap.png` with heatmaps). When two inputs would share an output
/// (`x.jpg` and `x.png` in one folder, or `x_heatmap.jpg` beside `x.jpg` with heatmaps), every input involved keeps
/// its extension in the name instead (`sub/x.jpg.png`), and a numeric suffix settles anything still equal.
public enum TranslationNames {
    /// One input's outputs, relative to the output folder.
    public struct Output: Equatable, Sendable {
        public let image: String
        public let heatmap: String?
    }

    /// - Parameter inputs: paths relative to the input folder (FolderScan order), `/`-separated; each appears once.
    /// - Returns: one `Output` per input, in the same order; all returned paths are distinct.
    public static func outputs(for inputs: [String], heatmap: Bool) -> [Output] {
        func stem(_ p: String) -> String { (p as NSString).deletingPathExtension }
        func plain(_ p: String) -> [String] { [stem(p) + ".png"] + (heatmap ? [stem(p) + "_heatmap.png"] : []) }
        var claims: [String: Int] = [:]
        for p in inputs { for o in plain(p) { claims[o, default: 0] += 1 } }
        var taken: Set<String> = []
        return inputs.map { p in
            let base = plain(p).contains { claims[$0]! > 1 } ? p : stem(p)
            var candidate = base
            var n = 1
            while taken.contains(candidate + ".png") || (heatmap && taken.contains(candidate + "_heatmap.png")) {
                n += 1
                candidate = "\(base)_\(n)"
            }
            taken.insert(candidate + ".png")
            if heatmap { taken.insert(candidate + "_heatmap.png") }
            return Output(image: candidate + ".png", heatmap: heatmap ? candidate + "_heatmap.png" : nil)
        }
    }
}
