import Checkpoint
import Dataset
import Engine
import Foundation
import TestSupport
import Training
import UGATIT
import XCTest

/// The command line as a user meets it: import, translate, validation messages, broken input files.
final class CLITests: XCTestCase {
    var work = ""

    override func setUpWithError() throws {
        work = NSTemporaryDirectory() + "f2w-cli-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: work) }

    func cli(_ args: [String], timeout: Double = 120) throws -> ProcessRunner.Result {
        let bin = try XCTUnwrap(
            ProcessRunner.face2webtoonBinary(), "face2webtoon not built: run `swift build --build-tests`")
        let r = try ProcessRunner.run([bin] + args, timeout: timeout)
        XCTAssertFalse(r.timedOut, r.output)
        return r
    }

    /// Writes the model's tensors under flattened official keys, as Scripts/torch_to_safetensors.py does.
    func writeOfficial(_ m: UGATITModel, to path: String) throws {
        let tensors = m.namedTensors.map { ($0.name, $0.value) }
        try SafeTensorsFile.encode(tensors, metadata: ["source": "test"]).write(to: URL(fileURLWithPath: path))
    }

    /// `--demo` with other demo sizes draws its data again (it trained on the first draw's images, silently).
    func testDemoDataFollowsTheDemoOptions() throws {
        let base = ["train", "--demo", "--result-dir", "\(work)/run", "--img-size", "32", "--ch", "4", "--n-res", "1",
                    "--threads", "1", "--sample-every", "0", "--no-tensorboard", "--demo-test-images", "2"]
        let first = try cli(base + ["--demo-images", "8", "--iterations", "1"])
        XCTAssertEqual(first.exitCode, 0, first.output)
        XCTAssertTrue(first.output.contains("trainA 8 images"), first.output)
        let again = try cli(base + ["--demo-images", "8", "--iterations", "2"])
        XCTAssertEqual(again.exitCode, 0, again.output)
        XCTAssertFalse(again.output.contains("drawing"), again.output)
        try FileManager.default.removeItem(atPath: "\(work)/run/checkpoints")
        let more = try cli(base + ["--demo-images", "12", "--iterations", "1"])
        XCTAssertEqual(more.exitCode, 0, more.output)
        XCTAssertTrue(more.output.contains("drawing it again"), more.output)
        XCTAssertTrue(more.output.contains("trainA 12 images"), more.output)
    }

    func testImportTorchInfersArchitectureAndKeepsEveryTensor() throws {
        for light in [true, false] {
            let config = ModelConfig(imageSize: 32, ch: 4, blocks: 2, light: light, globalLayers: 4, localLayers: 3)
            let m = UGATITModel(config: config, seed: 7)
            try writeOfficial(m, to: "\(work)/official.safetensors")
            try? FileManager.default.removeItem(atPath: "\(work)/ckpt")
            let r = try cli(
                ["import-torch", "\(work)/official.safetensors", "-o", "\(work)/ckpt"]
                    + (light ? ["--img-size", "32"] : []))
            XCTAssertEqual(r.exitCode, 0, r.output)
            XCTAssertTrue(r.output.contains("img 32 ch 4 n_res 2 \(light ? "light" : "full")"), r.output)
            let (saved, _) = try TrainingCheckpoint.peek(path: "\(work)/ckpt")
            var expected = config
            expected.camUsesRawWeight = true  // imported models keep the original's CAM behaviour
            XCTAssertEqual(saved.model, expected)
            let back = UGATITModel(config: saved.model, seed: 99)
            _ = try TrainingCheckpoint.load(path: "\(work)/ckpt", into: back, step: nil)
            for (a, b) in zip(
                m.generators.parameters + m.discriminators.parameters,
                back.generators.parameters + back.discriminators.parameters)
            {
                XCTAssertEqual(a.value.array, b.value.array, a.name)
            }
            XCTAssertEqual(m.discriminators.bufferValues.array, back.discriminators.bufferValues.array)
        }
    }

    func testImportRejectsAFileThatIsNotUGATIT() throws {
        try SafeTensorsFile.encode([("encoder.weight", Tensor(zeros: [2, 2]))]).write(
            to: URL(fileURLWithPath: "\(work)/x.safetensors"))
        let r = try cli(["import-torch", "\(work)/x.safetensors", "-o", "\(work)/c"])
        XCTAssertNotEqual(r.exitCode, 0)
        XCTAssertTrue(r.output.contains("not a U-GAT-IT generator"), r.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(work)/c"))
    }

    /// Outputs mirror the input tree: equal names in different group folders stay apart (hardening issue, item 8).
    func testTranslateWritesOneImagePerInputAndHeatmaps() throws {
        let m = UGATITModel(
            config: ModelConfig(imageSize: 32, ch: 4, blocks: 1, globalLayers: 4, localLayers: 3), seed: 1)
        try TrainingCheckpoint.save(
            root: "\(work)/c", config: TrainConfig(model: m.config, iterations: 1), model: m,
            step: nil, state: .init(step: 0, imagesSeen: 0))
        try DemoData.generate(
            to: URL(fileURLWithPath: "\(work)/data"), size: 40, trainPerDomain: 4, testPerDomain: 3, seed: 2)
        try Data("not an image".utf8).write(to: URL(fileURLWithPath: "\(work)/data/testA/0/broken.png"))
        let first = try XCTUnwrap(
            try FolderScan(folder: "\(work)/data/testA").files.first { !$0.hasSuffix("broken.png") })
        let name = (first as NSString).lastPathComponent
        try FileManager.default.createDirectory(atPath: "\(work)/data/testA/9", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: "\(work)/data/testA/\(first)", toPath: "\(work)/data/testA/9/\(name)")
        let r = try cli([
            "translate", "--checkpoint", "\(work)/c", "--input", "\(work)/data/testA",
            "--output", "\(work)/out", "--heatmap", "--threads", "1",
        ])
        XCTAssertEqual(r.exitCode, 0, r.output)
        XCTAssertTrue(r.output.contains("translated 4 of 5 images"), r.output)
        XCTAssertTrue(r.output.contains("broken.png"), r.output)
        let outs = (FileManager.default.enumerator(atPath: "\(work)/out")?.allObjects as? [String] ?? []).filter {
            $0.hasSuffix(".png")
        }.sorted()
        XCTAssertEqual(outs.filter { !$0.contains("heatmap") }.count, 4, "\(outs)")
        XCTAssertEqual(outs.filter { $0.contains("heatmap") }.count, 4, "\(outs)")
        let stem = (name as NSString).deletingPathExtension
        XCTAssertTrue(
            outs.contains("9/\(stem).png") && outs.contains(((first as NSString).deletingPathExtension) + ".png"),
            "\(outs)")
        let img = try ImageDecoder.decode(file: "\(work)/out/\(outs.first { !$0.contains("heatmap") }!)")
        XCTAssertEqual([img.width, img.height], [32, 32])
        let strip = try ImageDecoder.decode(file: "\(work)/out/\(outs.first { $0.contains("heatmap") }!)")
        XCTAssertEqual([strip.width, strip.height], [96, 32])
    }

    /// `bench train` takes train's model options and defaults (light unless --full) and says what it ran.
    func testBenchTrainUsesTrainsModelOptions() throws {
        let common = [
            "bench", "train", "--img-size", "32", "--ch", "4", "--n-res", "1", "--steps", "1", "--warmup-steps", "0",
            "--no-peak",
        ]
        let light = try cli(common)
        XCTAssertEqual(light.exitCode, 0, light.output)
        XCTAssertTrue(
            light.output.contains(
                "img_size=32 ch=4 n_res=1 generator=light batch_size=1 global_layers=4 local_layers=3 warmup_steps=0 steps=1"
            ),
            light.output)
        let full = try cli(common + ["--full", "--global-layers", "3"])
        XCTAssertEqual(full.exitCode, 0, full.output)
        XCTAssertTrue(full.output.contains("generator=full batch_size=1 global_layers=3"), full.output)
        XCTAssertNotEqual(try cli(["bench", "train", "--warmup", "1"]).exitCode, 0, "the old option name is gone")
        // with 2 threads: 3 interleaved pairs of 1- and 2-thread steps, one ratio each
        let two = try cli(common + ["--steps", "3", "--threads", "2"])
        XCTAssertEqual(two.exitCode, 0, two.output)
        XCTAssertTrue(two.output.contains("seconds_per_iter_1_thread=") && two.output.contains("threads_speedup="), two.output)
        let pairs = two.output.split(separator: "\n").first { $0.hasPrefix("threads_speedup_pairs=") }
        XCTAssertEqual(pairs?.dropFirst("threads_speedup_pairs=".count).split(separator: ",").count, 3, two.output)
    }

    func testTrainValidatesItsArguments() throws {
        var r = try cli(["train", "--result-dir", "\(work)/r"])
        XCTAssertNotEqual(r.exitCode, 0)
        XCTAssertTrue(r.output.contains("give --data DIR"), r.output)
        r = try cli(["train", "--demo", "--img-size", "64", "--global-layers", "7", "--result-dir", "\(work)/r"])
        XCTAssertNotEqual(r.exitCode, 0)
        XCTAssertTrue(r.output.contains("global discriminator with 7 layers cannot judge 64x64"), r.output)
        r = try cli(["train", "--data", "\(work)/nowhere", "--result-dir", "\(work)/r"])
        XCTAssertNotEqual(r.exitCode, 0)
        XCTAssertTrue(r.output.contains("nowhere: no such folder; \(work)"), r.output)
        XCTAssertTrue(r.output.contains(DataLayout.expected), r.output)
    }

    /// Trains on work/data into work/NAME (the command after `prefix`, e.g. nohup) for at most 100000 steps, and calls
    /// `watch(pid, rows of metrics.jsonl)` every 0.1 s until it returns true.
    func trainWatched(
        _ name: String, prefix: [String] = [], watch: @escaping @Sendable (pid_t, Int) -> Bool
    ) throws -> ProcessRunner.Result {
        let bin = try XCTUnwrap(ProcessRunner.face2webtoonBinary())
        let metrics = "\(work)/\(name)/metrics.jsonl"
        return try ProcessRunner.run(
            prefix + [
                bin, "train", "--data", "\(work)/data", "--result-dir", "\(work)/\(name)", "--img-size", "32", "--ch",
                "4", "--n-res", "1", "--iterations", "100000", "--threads", "1", "--sample-every", "0", "--save-every",
                "0",
            ], timeout: 120
        ) { pid in
            DispatchQueue.global().async {
                for _ in 0..<1200 {
                    Thread.sleep(forTimeInterval: 0.1)
                    let rows = ((try? String(contentsOfFile: metrics, encoding: .utf8)) ?? "").split(separator: "\n")
                    if watch(pid, rows.count) { return }
                }
            }
        }
    }

    /// SIGTERM (a Slurm time limit) and SIGHUP (a closed terminal) stop the run after the current step with a
    /// checkpoint of that step, and its sample grids.
    func testSIGTERMAndSIGHUPSaveAndStop() throws {
        try DemoData.generate(
            to: URL(fileURLWithPath: "\(work)/data"), size: 40, trainPerDomain: 12, testPerDomain: 2, seed: 3)
        for (name, sig) in [("term", SIGTERM), ("hup", SIGHUP)] {
            let r = try trainWatched(name) { pid, rows in
                guard rows >= 3 else { return false }
                kill(pid, sig)
                return true
            }
            XCTAssertEqual(r.exitCode, 0, "\(name): \(r.output)")
            XCTAssertTrue(
                r.output.contains("stop requested (SIGTERM/SIGINT/SIGHUP): saving the checkpoint at step"), r.output)
            let steps = try String(contentsOfFile: "\(work)/\(name)/metrics.jsonl", encoding: .utf8)
                .split(separator: "\n").count
            let (_, state) = try TrainingCheckpoint.peek(path: "\(work)/\(name)/checkpoints")
            XCTAssertEqual(state.step, steps, "the checkpoint holds the last completed step")
            XCTAssertLessThan(steps, 100)
            let grid = String(format: "%@/%@/samples/A2B_%07d.png", work, name, steps)
            XCTAssertTrue(FileManager.default.fileExists(atPath: grid), "\(name): \(grid)")
        }
        // under nohup SIGHUP stays ignored: the run goes on past it (3 more steps) until a SIGTERM
        let nohup = try XCTUnwrap(ProcessRunner.which("nohup"), "coreutils' nohup")
        final class Step: @unchecked Sendable { var hupAt = 0 }  // set by the signalling thread, read after it ends
        let at = Step()
        let r = try trainWatched("nohup", prefix: [nohup]) { pid, rows in
            if at.hupAt == 0 && rows >= 3 {
                at.hupAt = rows
                kill(pid, SIGHUP)
            } else if at.hupAt > 0 && rows >= at.hupAt + 3 {
                kill(pid, SIGTERM)
                return true
            }
            return false
        }
        XCTAssertEqual(r.exitCode, 0, r.output)
        XCTAssertTrue(r.output.contains("stop requested"), r.output)
        let steps = try String(contentsOfFile: "\(work)/nohup/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        XCTAssertGreaterThan(at.hupAt, 0)
        XCTAssertGreaterThanOrEqual(steps.count, at.hupAt + 3, "trained on after SIGHUP")
    }

    /// A broken file among the training images is reported once by name and the run goes on (an image of the same
    /// group takes its place).
    func testBrokenTrainingImageIsSkippedNotFatal() throws {
        try DemoData.generate(
            to: URL(fileURLWithPath: "\(work)/data"), size: 40, trainPerDomain: 12, testPerDomain: 2, seed: 3)
        let bad = "\(work)/data/trainA/0/00000.png"
        let bytes = try Data(contentsOf: URL(fileURLWithPath: bad))
        try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: bad))  // truncated PNG
        let r = try cli([
            "train", "--data", "\(work)/data", "--result-dir", "\(work)/run", "--img-size", "32", "--ch", "4",
            "--n-res", "1", "--iterations", "12", "--threads", "1", "--sample-every", "0",
        ])
        XCTAssertEqual(r.exitCode, 0, r.output)
        XCTAssertEqual(r.output.components(separatedBy: "00000.png").count - 1, 1, "reported once:\n\(r.output)")
        XCTAssertEqual(try TrainingCheckpoint.peek(path: "\(work)/run/checkpoints").1.step, 12)
        let lines = try String(contentsOfFile: "\(work)/run/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, 12)
    }

    /// A group none of whose images decodes is found before the first step (65), not when its turn comes.
    func testAGroupWithoutAReadableImageIsFoundAtTheStart() throws {
        try DemoData.generate(
            to: URL(fileURLWithPath: "\(work)/data"), size: 40, trainPerDomain: 12, testPerDomain: 2, seed: 3)
        let group = "\(work)/data/trainA/3"
        for f in try FileManager.default.contentsOfDirectory(atPath: group) {
            try Data("broken".utf8).write(to: URL(fileURLWithPath: "\(group)/\(f)"))
        }
        let r = try cli([
            "train", "--data", "\(work)/data", "--result-dir", "\(work)/run", "--img-size", "32", "--ch", "4",
            "--n-res", "1", "--iterations", "1000", "--threads", "1", "--sample-every", "0",
        ])
        XCTAssertEqual(r.exitCode, 65, r.output)
        XCTAssertTrue(r.output.contains("\(group.replacingOccurrences(of: "/3", with: "")): no readable image in group 3"), r.output)
        XCTAssertFalse(r.output.contains("step 1/"), r.output)
    }
}
