import ArgumentParser
import Engine

@main
struct Face2Webtoon: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "face2webtoon",
        abstract: "U-GAT-IT face-to-webtoon translation with group loss and ADA, trained data-parallel over MPI.",
        subcommands: [Train.self, Translate.self, ImportTorch.self, Bench.self])

    static func main() {
        // Before anything else: OpenBLAS must run its best kernel for this CPU (may re-exec this process once).
        Runtime.ensureFastBLASKernel()
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            exit(withError: error)
        }
    }
}
