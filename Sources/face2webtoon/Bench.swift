import ArgumentParser

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmarks that print key=value figures (never used as tests).",
        subcommands: [BenchOps.self, BenchTrain.self, BenchScaling.self, BenchCheckpoint.self, BenchAllReduce.self])
}
