// swift-tools-version:5.10
// Face2Webtoon: U-GAT-IT + group loss + ADA, trained data-parallel over MPI on CPUs.
//
// Dependencies point one way (each arrow is a declared dependency; every import is declared):
//   face2webtoon (CLI) -> Training -> {ADA, KID, Checkpoint, Dataset, Distributed, UGATIT, Monitoring}
//   face2webtoon (CLI) -> ONNXExport -> {UGATIT, Monitoring} (the generator as an ONNX graph)
//   Monitoring (TensorBoard event files, the HTML report, ONNX export's wire format) -> Engine (FileErrorText only)
//   CheckpointFuzz -> Checkpoint
//   ADA -> UGATIT (ADA plugs into the training step through UGATIT's DiscriminatorAugment and Domain)
//   KID -> Dataset (image folders and decoding)      Checkpoint -> Distributed (collective saves)
//   UGATIT, ADA, Dataset, KID, Checkpoint -> Engine -> COpenBLAS;   Distributed -> CMPIShim -> CMPI
// System libraries are found through pkg-config (no include or link paths in this file).
import Foundation
import PackageDescription

// Code generation for the Swift hot loops (the GEMMs are OpenBLAS's, chosen at run time).
// Default: the build machine's CPU ("native"), which on the project's machines means AVX-512.
// For a binary that must run on other x86-64 CPUs, build with F2W_TARGET_CPU=x86-64 (any x86-64)
// or F2W_TARGET_CPU=haswell (AVX2 + FMA); see docs/building.md.
let targetCPU = Context.environment["F2W_TARGET_CPU"] ?? "native"
#if arch(x86_64)
    let codegen: [SwiftSetting] = [.unsafeFlags(["-target-cpu", targetCPU])]
    let cTargetCPU = ["-march=\(targetCPU)"]
#else
    let codegen: [SwiftSetting] = []
    let cTargetCPU: [String] = []
#endif

let package = Package(
    name: "Face2Webtoon",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "face2webtoon", targets: ["face2webtoon"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0")
    ],
    targets: [
        // MARK: - C libraries and shims
        .systemLibrary(name: "CMPI", pkgConfig: "ompi-c", providers: [.apt(["libopenmpi-dev"])]),
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CPNG", pkgConfig: "libpng", providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(name: "CJPEG", pkgConfig: "libjpeg", providers: [.apt(["libjpeg-dev"])]),
        .systemLibrary(name: "CMalloc"),
        .target(name: "CMPIShim", dependencies: ["CMPI"]),
        // -ffp-contract=off: no fused multiply-adds, so the vectorised loops give the scalar expressions' floats
        .target(
            name: "CKernels",
            cSettings: [.unsafeFlags(["-O3", "-fno-math-errno", "-ffp-contract=off"] + cTargetCPU)]),
        .target(name: "CImageShim", dependencies: ["CJPEG", "CPNG"]),

        // MARK: - Libraries
        .target(name: "Engine", dependencies: ["COpenBLAS", "CMalloc", "CKernels"], swiftSettings: codegen),
        .target(name: "UGATIT", dependencies: ["Engine"], swiftSettings: codegen),
        .target(name: "ADA", dependencies: ["Engine", "UGATIT"], swiftSettings: codegen),
        .target(name: "Dataset", dependencies: ["Engine", "CImageShim", "CPNG", "CJPEG"], swiftSettings: codegen),
        .target(name: "Distributed", dependencies: ["CMPIShim"], swiftSettings: codegen),
        .target(name: "Monitoring", dependencies: ["Engine"], swiftSettings: codegen),  // Engine: FileErrorText
        .target(name: "ONNXExport", dependencies: ["Engine", "UGATIT", "Monitoring"], swiftSettings: codegen),
        .target(
            name: "Training",
            dependencies: ["UGATIT", "ADA", "Dataset", "Distributed", "Checkpoint", "KID", "Monitoring"],
            swiftSettings: codegen),
        .target(name: "TestSupport", dependencies: ["Engine"], swiftSettings: codegen),
        .target(name: "KID", dependencies: ["Engine", "Dataset"], swiftSettings: codegen),
        .target(name: "Checkpoint", dependencies: ["Engine", "Distributed", "CZstd"], swiftSettings: codegen),

        // MARK: - Executable
        .executableTarget(
            name: "face2webtoon",
            dependencies: [
                "Engine", "UGATIT", "ADA", "Dataset", "Distributed", "Checkpoint", "Training", "KID", "Monitoring",
                "ONNXExport", .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: codegen),
        .executableTarget(name: "CheckpointFuzz", dependencies: ["Checkpoint", "Distributed", "Engine"]),

        // MARK: - Tests
        .testTarget(
            name: "EngineTests", dependencies: ["Engine", "TestSupport"],
            resources: [.copy("Fixtures")], swiftSettings: codegen),
        .testTarget(
            name: "DistributedTests", dependencies: ["Distributed", "CMPIShim", "TestSupport"], swiftSettings: codegen),
        .testTarget(name: "ADATests", dependencies: ["ADA", "Engine", "TestSupport"], swiftSettings: codegen),
        .testTarget(
            name: "DatasetTests", dependencies: ["Dataset", "Engine", "TestSupport"], resources: [.copy("Fixtures")],
            swiftSettings: codegen),
        .testTarget(
            name: "UGATITTests", dependencies: ["UGATIT", "Engine", "TestSupport"],
            resources: [.copy("Fixtures")], swiftSettings: codegen),
        .testTarget(
            name: "TrainingTests",
            dependencies: [
                "Training", "ADA", "Checkpoint", "Dataset", "Distributed", "Engine", "UGATIT", "Monitoring", "TestSupport",
            ],
            swiftSettings: codegen),
        .testTarget(
            name: "KIDTests", dependencies: ["KID", "Dataset", "Engine", "TestSupport"], resources: [.copy("Fixtures")],
            swiftSettings: codegen),
        .testTarget(
            name: "CheckpointTests", dependencies: ["Checkpoint", "Distributed", "Engine", "TestSupport"],
            swiftSettings: codegen),
    ]
)
