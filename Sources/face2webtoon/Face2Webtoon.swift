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

    /// The subcommand names from the root to `target` ("bench", "train"), empty for the root.
    static func commandPath(to target: ParsableCommand.Type, from root: ParsableCommand.Type = Face2Webtoon.self)
        -> [String]
    {
        for sub in root.configuration.subcommands {
            if sub == target { return [sub._commandName] }
            let deeper = commandPath(to: target, from: sub)
            if !deeper.isEmpty { return [sub._commandName] + deeper }
        }
        return []
    }

    static func main() {
        // Before anything else: OpenBLAS's best kernel for this CPU and malloc's huge pages, both read before main
        // (may re-exec this process once).
        Runtime.ensureStartupEnvironment()
        // Line-buffered stdout, so progress reaches a log file or a pipe (Slurm, mpirun) as it happens.
        setvbuf(stdout, nil, _IOLBF, 0)
        // a closed output pipe (`... | head`) must not kill a data scan or a run: writes to it fail instead
        signal(SIGPIPE, SIG_IGN)
        var command: ParsableCommand
        do { command = try parseAsRoot() } catch { exit(withError: error) }  // usage errors (64), help, versions
        do {
            try command.run()
        } catch {
            // a runtime failure of ours: its message without a usage block, and a status saying what kind it was;
            // an option found wrong only while running (ValidationError, 64) with where its subcommand's help is;
            // everything else (CleanExit, ExitCode) as ArgumentParser reports it
            if let e = error as? ValidationError {
                let name = (["face2webtoon"] + commandPath(to: type(of: command))).joined(separator: " ")
                FileHandle.standardError.write(Data("error: \(e.message)\nSee '\(name) --help'.\n".utf8))
                Foundation.exit(ExitStatus.usage.rawValue)
            }
            let status = ExitStatus(for: error)
            guard status != .failure else { exit(withError: error) }
            FileHandle.standardError.write(Data("error: \(FileErrorText.describe(error) ?? "\(error)")\n".utf8))
            Foundation.exit(status.rawValue)
        }
    }
}
