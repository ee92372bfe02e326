import ArgumentParser
import Engine
import Foundation
import Training

@main
struct Face2Webtoon: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "face2webtoon",
        abstract: "U-GAT-IT face-to-webtoon translation with group loss and ADA, trained data-parallel over MPI.",
        subcommands: [
            Train.self, Translate.self, ImportTorch.self, Merge.self, Export.self, Inspect.self, GroupEval.self,
            Bench.self, KIDCommand.self, Report.self,
        ])

    static func main() {
        // Before anything else: OpenBLAS's best kernel for this CPU and malloc's huge pages, both read before main
        // (may re-exec this process once).
        Runtime.ensureStartupEnvironment()
        // Line-buffered stdout, so progress reaches a log file or a pipe (Slurm, mpirun) as it happens.
        setvbuf(stdout, nil, _IOLBF, 0)
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            // a runtime failure of ours: its message without a usage block, and a status saying what kind it was;
            // everything else (usage errors: 64, help, ArgumentParser's own) as ArgumentParser reports it
            let status = ExitStatus(for: error)
            guard status != .failure else { exit(withError: error) }
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            Foundation.exit(status.rawValue)
        }
    }
}
