import Dataset
import Engine
import Foundation
import TestSupport
import Training
import UGATIT
import XCTest

/// `export --format onnx`: the ONNX generator, run by the real onnxruntime (Scripts/checks/check_onnx.py, which also
/// runs onnx.checker), gives the images `translate` writes within 1 in 8-bit values: on official-architecture
/// models made by PyTorch (the step golden script's networks after one step, through import-torch) in light and full
/// mode, and on the demo checkpoint; and its float outputs (translation and CAM heatmap) equal the Swift generator's
/// within 1e-4 relative. Scripts/test installs the checker and requires it.
final class ONNXExportTests: XCTestCase {
    var work = ""
    let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    override func setUpWithError() throws {
        work = NSTemporaryDirectory() + "f2w-onnx-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: work) }

    func bin() throws -> String { try XCTUnwrap(ProcessRunner.face2webtoonBinary(), "face2webtoon not built") }

    func checkerPython() throws -> String {
        let env = ProcessInfo.processInfo.environment
        guard let python = env["F2W_CHECK_PYTHON"] else {
            if env["F2W_REQUIRE_CHECKS"] == "1" { XCTFail("F2W_REQUIRE_CHECKS=1 but no F2W_CHECK_PYTHON") }
            throw XCTSkip("no F2W_CHECK_PYTHON with onnx and onnxruntime (Scripts/test sets it up)")
        }
        return python
    }

    /// Smooth colour patterns (faces are smooth, noise is not), `size`² each, plus one image of another shape that
    /// both sides resize with Pillow's bilinear filter.
    func writeImages(size: Int, into dir: String) throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for (i, (w, h)) in [(size, size), (size, size), (size + 13, size - 5)].enumerated() {
            var pixels = [UInt8](repeating: 0, count: 3 * w * h)
            for y in 0..<h {
                for x in 0..<w {
                    for c in 0..<3 {
                        let v = 127.5 + 120 * sin(Double(x * (c + 1) + 2 * y + 17 * i) / Double(3 + i + c))
                        pixels[3 * (y * w + x) + c] = UInt8(max(0, min(255, v.rounded())))
                    }
                }
            }
            try PNGCodec.write(RGBImage(width: w, height: h, pixels: pixels), to: "\(dir)/img\(i).png")
        }
    }

    /// The generator's float outputs for every image of `images` (translate's preprocessing), as the safetensors file
    /// that check_onnx.py --reference reads: `<stem>.translation`, `<stem>.cam_heatmap`.
    func writeReference(_ ckpt: String, images: String, direction: String, to path: String) throws {
        let (config, _) = try TrainingCheckpoint.peek(path: ckpt)
        let model = UGATITModel(config: config.model, seed: 0)
        _ = try TrainingCheckpoint.load(path: ckpt, into: model, step: nil)
        let g = direction == "A2B" ? model.genA2B : model.genB2A
        let s = config.model.imageSize
        var tensors: [(String, Tensor)] = []
        for name in try FileManager.default.contentsOfDirectory(atPath: images).sorted() {
            let x = ImageTransforms.test(try ImageDecoder.decode(file: "\(images)/\(name)"), size: s)
            let t = Tape(training: false)
            let y = g(t, t.constant(x.reshaped([1, 3, s, s])))
            let stem = (name as NSString).deletingPathExtension
            tensors += [("\(stem).translation", y.image.value.copy()), ("\(stem).cam_heatmap", y.heatmap.value.copy())]
        }
        try SafeTensorsFile.encode(tensors).write(to: URL(fileURLWithPath: path))
    }

    /// translate, export and the onnxruntime comparison of one checkpoint and direction.
    func exportAndCheck(_ ckpt: String, size: Int, direction: String, label: String) throws {
        let python = try checkerPython()
        let images = "\(work)/images-\(size)"
        if !FileManager.default.fileExists(atPath: images) { try writeImages(size: size, into: images) }
        let out = "\(work)/translated-\(label)-\(direction)"
        let t = try ProcessRunner.run(
            [bin(), "translate", "--checkpoint", ckpt, "--input", images, "--output", out, "--direction", direction],
            timeout: 300)
        XCTAssertEqual(t.exitCode, 0, t.output)
        let model = "\(work)/\(label)-\(direction).onnx"
        let e = try ProcessRunner.run(
            [bin(), "export", ckpt, "-o", model, "--direction", direction], timeout: 300)  // .onnx: --format onnx
        XCTAssertEqual(e.exitCode, 0, e.output)
        XCTAssertTrue(e.output.contains("as ONNX opset 17"), e.output)
        let reference = "\(work)/\(label)-\(direction)-reference.safetensors"
        try writeReference(ckpt, images: images, direction: direction, to: reference)
        let check = repo.appendingPathComponent("Scripts/checks/check_onnx.py").path
        let c = try ProcessRunner.run(
            [python, check, model, "--images", images, "--translated", out, "--reference", reference, "--rtol", "1e-4"],
            timeout: 300)
        XCTAssertEqual(c.exitCode, 0, "\(label) \(direction): \(c.output)")
        XCTAssertTrue(c.output.contains("check_onnx: ok images=3"), c.output)
        XCTAssertTrue(c.output.contains("outputs=translation,cam_heatmap max_rel_diff="), c.output)
    }

    /// The step golden script's PyTorch networks (official module structure and keys) after one training step, so
    /// that rho, gamma and beta are no longer at their initial values.
    func testONNXMatchesTranslateOnPyTorchMadeModelsLightAndFull() throws {
        _ = try checkerPython()
        for mode in ["light", "full"] {
            let fixture = repo.appendingPathComponent("Tests/UGATITTests/Fixtures/step_\(mode).safetensors").path
            let golden = try SafeTensorsFile(path: fixture)
            let size = try XCTUnwrap(golden.metadata["S"].flatMap { Int($0) })
            let prefix = "after1."
            var tensors: [(String, Tensor)] = []
            for name in golden.names where name.hasPrefix(prefix) {
                tensors.append((String(name.dropFirst(prefix.count)), try golden.tensor(name)))
            }
            XCTAssertTrue(tensors.contains { $0.0 == "genA2B.UpBlock1_1.norm1.rho" }, "official keys")
            let official = "\(work)/official-\(mode).safetensors"
            try SafeTensorsFile.encode(tensors, metadata: ["source": "make_step_golden.py"]).write(
                to: URL(fileURLWithPath: official))
            let ckpt = "\(work)/ckpt-\(mode)"
            let i = try ProcessRunner.run(
                [bin(), "import-torch", official, "-o", ckpt] + (mode == "light" ? ["--img-size", "\(size)"] : []),
                timeout: 120)
            XCTAssertEqual(i.exitCode, 0, i.output)
            for direction in ["A2B", "B2A"] {
                try exportAndCheck(ckpt, size: size, direction: direction, label: mode)
            }
        }
    }

    func testONNXMatchesTranslateOnTheDemoCheckpoint() throws {
        _ = try checkerPython()
        let dir = "\(work)/demo"
        let r = try ProcessRunner.run(
            [bin(), "train", "--demo", "--result-dir", dir, "--iterations", "2", "--img-size", "64", "--no-tensorboard"],
            timeout: 300)
        XCTAssertEqual(r.exitCode, 0, r.output)
        try exportAndCheck("\(dir)/checkpoints", size: 64, direction: "A2B", label: "demo")
    }

    func testONNXRefusesDiscriminators() throws {
        let r = try ProcessRunner.run(
            [bin(), "export", "\(work)/none", "--format", "onnx", "-o", "\(work)/x.onnx", "--with-discriminators"],
            timeout: 60)
        XCTAssertEqual(r.exitCode, 64, r.output)
        XCTAssertTrue(r.output.contains("one generator only"), r.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(work)/x.onnx"))
        // the ONNX-only options are refused for the safetensors export (which holds both generators)
        for (flag, name) in [(["--direction", "B2A"], "--direction"), (["--no-heatmap"], "--no-heatmap")] {
            let s = try ProcessRunner.run(
                [bin(), "export", "\(work)/none", "-o", "\(work)/g.safetensors"] + flag, timeout: 60)
            XCTAssertEqual(s.exitCode, 64, s.output)
            XCTAssertTrue(s.output.contains("\(name) applies to --format onnx"), s.output)
        }
        let help = try ProcessRunner.run([bin(), "export", "--help"], timeout: 60)
        XCTAssertTrue(help.output.contains("safetensors, onnx") || help.output.contains("safetensors|onnx"), help.output)
    }
}
