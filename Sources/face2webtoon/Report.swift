import ArgumentParser
import Engine
import Foundation
import Monitoring

struct Report: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write one self-contained HTML page about a result folder (curves, KID, ADA, samples, checkpoints).",
        discussion: """
            Reads RESULT_DIR/metrics.jsonl, samples/*.png, config.json and checkpoints/ as they are, so it also works \
            on a running job. The page needs no network: plots are inline SVG and images are embedded.
            """)

    @Argument(help: "A result folder of `face2webtoon train`.") var resultDir: String
    @Option(name: .shortAndLong, help: "Output file (default: RESULT_DIR/report.html).") var output: String?

    func run() throws {
        let (page, summary) = try RunReport.html(resultDir: resultDir)
        let out = output ?? "\(resultDir)/report.html"
        let tmp = "\(out).tmp-\(getpid())"
        do {
            try Data(page.utf8).write(to: URL(fileURLWithPath: tmp))
            guard rename(tmp, out) == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        } catch {
            unlink(tmp)
            throw MonitoringError.io(path: out, reason: "cannot write the report: \(FileErrorText.reason(error))")
        }
        print("[face2webtoon] report: \(out) (\(summary), \(page.utf8.count / 1024) KiB)")
    }
}
