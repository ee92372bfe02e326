import Foundation
import Monitoring

/// What rank 0 records of a run: the rows of metrics.jsonl and, when on, the same scalars, the sample grids and the
/// configuration in TensorBoard event files. Both follow one rule on resume: the steps from `firstStep` on are
/// written anew and replace what an earlier run wrote there.
final class RunLog {
    let metrics: MetricsLog
    let tensorBoard: TensorBoardWriter?
    let warn: (String) -> Void
    private var metricsFailing = false

    /// - Parameter warn: where a row that cannot be written (a full disk) is reported, once until writing works again:
    ///   reporting never ends a run (the next checkpoint save says whether the run can go on).
    /// - Throws: `TrainingError.io` when metrics.jsonl or the TensorBoard directory cannot be made at the start.
    init(resultDir: String, tensorBoardDirectory: String?, firstStep: Int, warn: @escaping (String) -> Void) throws {
        self.warn = warn
        metrics = try MetricsLog(path: "\(resultDir)/metrics.jsonl", firstStep: firstStep)
        do {
            tensorBoard = try tensorBoardDirectory.map {
                try TensorBoardWriter(directory: $0, firstStep: firstStep, warn: { warn("warning: \($0)") })
            }
        } catch MonitoringError.io(let path, let reason) {
            throw TrainingError.io(path: path, reason: reason)  // the writer's own path and reason, said once
        }
    }

    /// One row of metrics.jsonl; every number in it except the step becomes a TensorBoard scalar of the same name.
    func write(_ record: [String: Any], step: Int) {
        do {
            try metrics.write(record)
            if metricsFailing { warn("warning: \(metrics.path): writing again from step \(step)") }
            metricsFailing = false
        } catch {
            if !metricsFailing { warn("warning: \(error); rows are lost until it can be written (step \(step) on)") }
            metricsFailing = true
        }
        guard let tensorBoard else { return }
        var scalars: [(tag: String, value: Double)] = []
        for (k, v) in record.sorted(by: { $0.key < $1.key }) where k != "step" {
            if let d = v as? Double {
                scalars.append((k, d))
            } else if let f = v as? Float {
                scalars.append((k, Double(f)))
            } else if let i = v as? Int {
                scalars.append((k, Double(i)))
            }
        }
        tensorBoard.scalars(scalars, step: step)
    }

    func image(tag: String, png: [UInt8], width: Int, height: Int, step: Int) {
        tensorBoard?.image(tag: tag, png: png, width: width, height: height, step: step)
        tensorBoard?.flush()
    }

    func text(tag: String, _ markdown: String, step: Int) { tensorBoard?.text(tag: tag, markdown, step: step) }
}
