import ArgumentParser
import Engine
import Foundation
import Training

@main
struct Face2Webtoon: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "face2webtoon",
        abstract: "U-GAT-IT face-to-webtoon translation with group loss and ADA, trained data-parallel over MPI.",
        subcommands: [Train.self, Translate.self, ImportTorch.self, Merge.self, Export.self, Inspect.self, GroupEval.self, Bench.self, KIDCommand.self])

    static func main() {
        // Before anything else: OpenBLAS must run its best kernel for this CPU (may re-exec this process once).
        Runtime.ensureFastBLASKernel()
        // Line-buffered stdout, so progress reaches a log file or a pipe (Slurm, mpirun) as it happens.
        setvbuf(stdout, nil, _IOLBF, 0)
        var command: ParsableCommand
        do { command = try parseAsRoot() } catch { exit(withError: error) }
        do {
            try command.run()
        } catch let e as ValidationError {
            exit(withError: e)   // usage: 64, with the usage text
        } catch {
            // a runtime failure: its message without a usage block, and a status that says what kind it was
            let status = ExitStatus(for: error)
            let message = error is CleanExit || error is ExitCode ? nil : "error: \(error)\n"
            guard let message else { exit(withError: error) }
            FileHandle.standardError.write(Data(message.utf8))
            Foundation.exit(status.rawValue)
        }
    }
}
