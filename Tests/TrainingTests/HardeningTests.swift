import Dataset
import Foundation
import Monitoring
import TestSupport
import Training
import XCTest

/// Bad input is refused early with the reason and a status of its kind; reporting never kills a run.
final class HardeningTests: XCTestCase {
    static var dataDir = ""
    var work = ""

    override class func setUp() {
        super.setUp()
        dataDir = NSTemporaryDirectory() + "f2w-hardening-data-\(getpid())"
        try? DemoData.generate(
            to: URL(fileURLWithPath: dataDir), size: 40, trainPerDomain: 8, testPerDomain: 6, seed: 4)
        // 3 sample faces, 6 sample webtoon images: the domains differ in count
        let testA = "\(dataDir)/testA"
        let files = (FileManager.default.enumerator(atPath: testA)?.allObjects as? [String] ?? []).filter {
            $0.hasSuffix(".png")
        }
        for f in files.sorted().prefix(files.count - 3) { try? FileManager.default.removeItem(atPath: "\(testA)/\(f)") }
    }

    override class func tearDown() {
        try? FileManager.default.removeItem(atPath: dataDir)
        super.tearDown()
    }

    override func setUpWithError() throws {
        work = NSTemporaryDirectory() + "f2w-hardening-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: work) }

    func train(_ extra: [String], data: String? = nil, dir: String = "run") throws -> ProcessRunner.Result {
        let bin = try XCTUnwrap(ProcessRunner.face2webtoonBinary(), "run `swift build --build-tests`")
        let r = try ProcessRunner.run(
            [
                bin, "train", "--data", data ?? Self.dataDir, "--result-dir", "\(work)/\(dir)", "--img-size", "32",
                "--ch", "4", "--n-res", "1", "--threads", "1",
            ] + extra, timeout: 180)
        XCTAssertFalse(r.timedOut)
        return r
    }

    /// What a resume will do is said before it does it: a stopped run has its sample grids, a finished one has
    /// nothing to train, a --stop-at behind the checkpoint does not apply, and another --iterations stretches the decay.
    func testResumeBannerSaysWhatTheResumeWillDo() throws {
        let stopped = try train(["--iterations", "4", "--sample-every", "100", "--stop-at", "2"])
        XCTAssertEqual(stopped.exitCode, 0, stopped.output)
        XCTAssertTrue(
            FileManager.default.fileExists(atPath: "\(work)/run/samples/A2B_0000002.png"), "grids at the stop")
        let behind = try train(["--iterations", "4", "--sample-every", "100", "--stop-at", "1"])
        XCTAssertEqual(behind.exitCode, 0, behind.output)
        XCTAssertTrue(
            behind.output.contains("--stop-at 1 is at or before the checkpoint's step 2: it does not apply"),
            behind.output)
        XCTAssertTrue(behind.output.contains("step 4/4"), behind.output)
        let finished = try train(["--iterations", "4"])
        XCTAssertEqual(finished.exitCode, 0, finished.output)
        XCTAssertTrue(
            finished.output.contains("the checkpoint is at step 4 of --iterations 4: nothing to train"),
            finished.output)
        XCTAssertFalse(finished.output.contains("steps 5...4"), finished.output)
        let longer = try train(["--iterations", "8", "--stop-at", "5"])
        XCTAssertEqual(longer.exitCode, 0, longer.output)
        // at step 5 of 8 the decay (over steps 5...8) gives 1e-4 · (1 − 1/4); of 4, the run was over: 0
        XCTAssertTrue(
            longer.output.contains(
                "--iterations 8, the checkpoint's run had 4: the linear decay follows the new length (lr at step 5: "
                    + "7.5e-05, 0 with 4)"), longer.output)
    }

    /// Group selections that cannot work are refused with the reason: a resume with another selection and a damaged
    /// data position crashed (132), and a base group left out of the selection froze the bottleneck silently.
    func testGroupSelectionsThatCannotWorkAreRefused() throws {
        let leftOut = try train(["--iterations", "2", "--groups", "1,2", "--sample-every", "0"])
        XCTAssertEqual(leftOut.exitCode, 64, leftOut.output)
        XCTAssertTrue(leftOut.output.contains("--base-group 0 is not among the groups fed ([1, 2])"), leftOut.output)
        let first = try train(["--iterations", "2", "--groups", "0,1", "--sample-every", "0"])
        XCTAssertEqual(first.exitCode, 0, first.output)
        let other = try train(["--iterations", "4", "--groups", "0", "--sample-every", "0"])
        XCTAssertEqual(other.exitCode, 64, other.output)
        XCTAssertTrue(
            other.output.contains("the checkpoint was trained on groups [0, 1], this run feeds groups [0]"), other.output)
        XCTAssertTrue(other.output.contains("--init-from"), other.output)
        // the same selection with a data position that does not fit it (a damaged manifest)
        let manifest = "\(work)/run/checkpoints/step_00000002/manifest.json"
        let text = try String(contentsOfFile: manifest, encoding: .utf8)
        let damaged = text.replacingOccurrences(
            of: #""data_cursors"\s*:\s*\[[^\]]*\]"#, with: #""data_cursors":[-5]"#, options: .regularExpression)
        XCTAssertNotEqual(damaged, text, "the manifest holds data_cursors")
        try damaged.write(toFile: manifest, atomically: true, encoding: .utf8)
        let cursors = try train(["--iterations", "4", "--groups", "0,1", "--sample-every", "0"])
        XCTAssertEqual(cursors.exitCode, 66, cursors.output)
        XCTAssertTrue(cursors.output.contains("does not fit its 2 group slot(s)"), cursors.output)
    }

    /// Groups from label CSVs on flat folders are all fed by default (only group 0 was: the groups were counted on
    /// the folders, not the CSVs).
    func testGroupsFromLabelCSVsAreAllFed() throws {
        let flat = "\(work)/flat"
        for domain in ["trainA", "trainB"] {
            try FileManager.default.createDirectory(atPath: "\(flat)/\(domain)", withIntermediateDirectories: true)
            var csv = "file,label\n"
            for group in ["0", "1"] {
                let from = "\(Self.dataDir)/\(domain)/\(group)"
                for f in try FileManager.default.contentsOfDirectory(atPath: from).sorted() {
                    try FileManager.default.copyItem(atPath: "\(from)/\(f)", toPath: "\(flat)/\(domain)/g\(group)-\(f)")
                    csv += "g\(group)-\(f),\(group)\n"
                }
            }
            try csv.write(toFile: "\(work)/\(domain).csv", atomically: true, encoding: .utf8)
        }
        let r = try train(
            ["--iterations", "2", "--sample-every", "0", "--labels-a", "\(work)/trainA.csv", "--labels-b",
             "\(work)/trainB.csv"], data: flat)
        XCTAssertEqual(r.exitCode, 0, r.output)
        XCTAssertTrue(r.output.contains("groups [0, 1] fed"), r.output)
        XCTAssertFalse(r.output.contains("(not selected)"), r.output)
    }

    /// Item 1: different numbers of sample images per domain crashed the augmented grid (SIGILL, 132).
    func testSampleGridsWithUnequalDomainsDoNotKillTheRun() throws {
        let r = try train(["--iterations", "2", "--sample-every", "1", "--ada", "fixed", "--ada-p", "0.5"])
        XCTAssertEqual(r.exitCode, 0, r.output)
        let left = FileManager.default.enumerator(atPath: "\(Self.dataDir)/testA")?.allObjects as? [String] ?? []
        XCTAssertEqual(
            left.filter { $0.hasSuffix(".png") }.count, 3, "the fixture has 3 faces against 6 webtoon images")
        for f in ["A2B_0000001.png", "B2A_0000002.png", "augmented_0000002.png"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: "\(work)/run/samples/\(f)"), f)
        }
        XCTAssertTrue(FileManager.default.fileExists(atPath: "\(work)/run/checkpoints/LATEST"))
    }

    /// Items 2 and 5: every numeric option is checked (finite, in range) before anything is read or written.
    func testNumericOptionsAreCheckedFirst() throws {
        let bad: [[String]] = [
            ["--lr", "nan"], ["--lr", "inf"], ["--lr=-1"], ["--lr", "0"], ["--weight-decay=-0.1"],
            ["--ada-target", "2"], ["--ada-p", "nan"], ["--cam-weight", "inf"], ["--bucket-mb", "0"],
            ["--batch-size", "0"], ["--iterations", "0"], ["--ada-kimg=-inf"], ["--checkpoint-level", "99"],
        ]
        for args in bad {
            let r = try train(["--iterations", "1"] + args, dir: "bad")
            XCTAssertEqual(r.exitCode, 64, "\(args): \(r.output)")
            XCTAssertTrue(r.output.contains(args[0].split(separator: "=")[0]), "names the option: \(r.output)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: "\(work)/bad"), "\(args): nothing written")
        }
        // --demo checks the model before drawing its data
        let bin = try XCTUnwrap(ProcessRunner.face2webtoonBinary())
        let demo = try ProcessRunner.run(
            [bin, "train", "--demo", "--img-size", "30", "--result-dir", "\(work)/demo"], timeout: 60)
        XCTAssertEqual(demo.exitCode, 64, demo.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(work)/demo/demo-data"), demo.output)
    }

    func testBatchLargerThanTheDataSetIsRefused() throws {
        let r = try train(["--iterations", "1", "--batch-size", "9"])
        XCTAssertEqual(r.exitCode, 64, r.output)
        XCTAssertTrue(r.output.contains("larger than the data set (trainA 8, trainB 8 images)"), r.output)
    }

    /// Runtime failures print their reason without a usage block, with a status of their kind.
    func testRuntimeFailuresHaveTheirOwnStatus() throws {
        let missing = try train(["--iterations", "1"], data: "\(work)/nowhere")
        XCTAssertEqual(missing.exitCode, 65, missing.output)
        let resume = try train(["--iterations", "1", "--resume", "\(work)/no-checkpoint"])
        XCTAssertEqual(resume.exitCode, 66, resume.output)
        for r in [missing, resume] { XCTAssertFalse(r.output.contains("Usage:"), r.output) }
    }

    /// `inspect` of a damaged checkpoint prints its summary, then ends as an unusable checkpoint does (66, with an
    /// `error:` line naming it), with or without `--json`; `report` of a folder without metrics.jsonl is bad input (65).
    func testInspectOfADamagedCheckpointAndReportOfNoRunHaveTheirStatus() throws {
        XCTAssertEqual(try train(["--iterations", "1", "--sample-every", "0"]).exitCode, 0)
        let bin = try XCTUnwrap(ProcessRunner.face2webtoonBinary())
        let root = "\(work)/run/checkpoints"
        let good = try ProcessRunner.run([bin, "inspect", root], timeout: 60)
        XCTAssertEqual(good.exitCode, 0, good.output)
        XCTAssertTrue(good.output.contains("integrity: ok"), good.output)

        let latest = try String(contentsOfFile: "\(root)/LATEST", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let shard = try XCTUnwrap(
            try FileManager.default.contentsOfDirectory(atPath: "\(root)/\(latest)").first { $0.hasSuffix(".shard") })
        let path = "\(root)/\(latest)/\(shard)"
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        bytes[bytes.count / 2] ^= 0xFF
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        for extra in [[], ["--json"]] {
            let bad = try ProcessRunner.run([bin, "inspect", root] + extra, timeout: 60)
            XCTAssertEqual(bad.exitCode, 66, "\(extra): \(bad.output)")
            XCTAssertTrue(bad.output.contains("error: checkpoint \(root): integrity:"), bad.output)
            XCTAssertFalse(bad.output.contains("Usage:"), bad.output)
        }

        let report = try ProcessRunner.run([bin, "report", work], timeout: 60)
        XCTAssertEqual(report.exitCode, 65, report.output)
        XCTAssertTrue(report.output.contains("no metrics.jsonl"), report.output)
    }

    /// An output that cannot be written is an I/O failure (74, not retried), not a bug (1, retried).
    func testOutputFailuresAreIOFailures() {
        XCTAssertEqual(ExitStatus(for: ImageEncodeError(path: "out/a.png", detail: "No space left on device")), .io)
        XCTAssertEqual(ExitStatus(for: MonitoringError.io(path: "run/report.html", reason: "Permission denied")), .io)
        XCTAssertEqual(ExitStatus(for: MonitoringError.badInput(path: "run/metrics.jsonl", reason: "none")), .badData)
        // Foundation's own file errors, e.g. `translate --output` in a folder that cannot be written
        XCTAssertThrowsError(
            try FileManager.default.createDirectory(
                atPath: "/proc/version/out", withIntermediateDirectories: true)
        ) { XCTAssertEqual(ExitStatus(for: $0), .io, "\($0)") }
        XCTAssertEqual(ExitStatus(for: CocoaError(.fileWriteNoPermission)), .io)
        XCTAssertEqual(ExitStatus(for: POSIXError(.ENOSPC)), .io)
        struct Unexpected: Error {}
        XCTAssertEqual(ExitStatus(for: Unexpected()), .failure)
    }

    /// Item 7: sizes left out come from the checkpoint; a conflicting one names the field and both values.
    func testResumeTakesSizesFromTheCheckpointAndNamesConflicts() throws {
        XCTAssertEqual(try train(["--iterations", "2", "--sample-every", "0", "--stop-at", "1"]).exitCode, 0)
        let bin = try XCTUnwrap(ProcessRunner.face2webtoonBinary())
        let base = [
            bin, "train", "--data", Self.dataDir, "--result-dir", "\(work)/run", "--threads", "1", "--sample-every",
            "0",
            "--iterations", "2",
        ]
        let conflict = try ProcessRunner.run(base + ["--ch", "8"], timeout: 120)
        XCTAssertEqual(conflict.exitCode, 64, conflict.output)
        XCTAssertTrue(conflict.output.contains("ch: 4 in the checkpoint, 8 now"), conflict.output)
        // found while running, not by the parser: the subcommand's help, not the top-level usage
        XCTAssertTrue(conflict.output.contains("See 'face2webtoon train --help'."), conflict.output)
        XCTAssertFalse(conflict.output.contains("Usage:"), conflict.output)
        let resumed = try ProcessRunner.run(base, timeout: 120)  // no size options: the checkpoint's 32/4/1
        XCTAssertEqual(resumed.exitCode, 0, resumed.output)
        XCTAssertTrue(resumed.output.contains("checkpoint loaded"), resumed.output)
        XCTAssertTrue(resumed.output.contains("img 32 ch 4 n_res 1"), resumed.output)
        // the tools on that checkpoint, given paths that cannot work: the path, the cause, the documented status
        let checkpoint = "\(work)/run/checkpoints"
        let noInput = try ProcessRunner.run(
            [bin, "translate", "--checkpoint", checkpoint, "--input", "\(work)/none", "--output", "\(work)/out"],
            timeout: 60)
        XCTAssertEqual(noInput.exitCode, 65, noInput.output)
        try Data("not an image".utf8).write(to: URL(fileURLWithPath: "\(work)/broken.png"))
        let broken = try ProcessRunner.run(
            [bin, "translate", "--checkpoint", checkpoint, "--input", "\(work)/broken.png", "--output", "\(work)/out"],
            timeout: 60)
        XCTAssertEqual(broken.exitCode, 65, broken.output)
        XCTAssertTrue(broken.output.contains("not one image could be read"), broken.output)
        let threads = try ProcessRunner.run(
            [bin, "translate", "--checkpoint", checkpoint, "--input", "\(work)/broken.png", "--output", "\(work)/out",
             "--threads", "0"], timeout: 60)
        XCTAssertEqual(threads.exitCode, 64, threads.output)
        XCTAssertTrue(noInput.output.contains("error: \(work)/none: no such file or folder"), noInput.output)
        let onnx = try ProcessRunner.run(
            [bin, "export", checkpoint, "--format", "onnx", "-o", "\(work)/no/such/dir/g.onnx"], timeout: 60)
        XCTAssertEqual(onnx.exitCode, 74, onnx.output)
        XCTAssertTrue(
            onnx.output.contains("error: \(work)/no/such/dir/g.onnx: cannot create: No such file or directory"),
            onnx.output)
        try Data([1]).write(to: URL(fileURLWithPath: "\(work)/file"))
        let underFile = try ProcessRunner.run(
            [bin, "translate", "--checkpoint", checkpoint, "--input", "\(Self.dataDir)/testA", "--output",
             "\(work)/file/out"], timeout: 60)
        XCTAssertEqual(underFile.exitCode, 74, underFile.output)
        XCTAssertTrue(underFile.output.contains("error: \(work)/file/out: Not a directory"), underFile.output)
        // exported weights given as a checkpoint: what a checkpoint is, and how to make one of them
        try Data(repeating: 7, count: 64).write(to: URL(fileURLWithPath: "\(work)/g.safetensors"))
        let weights = try ProcessRunner.run(
            [bin, "translate", "--checkpoint", "\(work)/g.safetensors", "--input", "\(Self.dataDir)/testA", "--output",
             "\(work)/out"], timeout: 60)
        XCTAssertEqual(weights.exitCode, 66, weights.output)
        XCTAssertTrue(weights.output.contains("import-torch FILE -o DIR"), weights.output)
        // outputs that would overwrite their own input are refused, and the input is left as it was
        let manifest = try XCTUnwrap(
            FileManager.default.enumerator(atPath: checkpoint)?.allObjects.compactMap { $0 as? String }
                .first { $0.hasSuffix("manifest.json") })
        let before = try Data(contentsOf: URL(fileURLWithPath: "\(checkpoint)/\(manifest)"))
        let intoItself = try ProcessRunner.run(
            [bin, "merge", checkpoint, "-o", "\(checkpoint)/\(manifest)"], timeout: 60)
        XCTAssertEqual(intoItself.exitCode, 64, intoItself.output)
        XCTAssertTrue(intoItself.output.contains("would overwrite the checkpoint it is made from"), intoItself.output)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: "\(checkpoint)/\(manifest)")), before)
        // the same through a link to a step folder: `link/..` is the checkpoint root to the kernel
        let link = "\(work)/steplink"
        try FileManager.default.createSymbolicLink(
            atPath: link, withDestinationPath: "\(checkpoint)/\((manifest as NSString).deletingLastPathComponent)")
        for target in ["\(link)/../LATEST", "\(link)/new.f2w"] {
            let viaLink = try ProcessRunner.run([bin, "merge", checkpoint, "-o", target], timeout: 60)
            XCTAssertEqual(viaLink.exitCode, 64, "\(target): \(viaLink.output)")
        }
        XCTAssertEqual(try ProcessRunner.run([bin, "merge", checkpoint, "-o", "\(work)/m.f2w"], timeout: 60).exitCode, 0)
        let missing = try ProcessRunner.run([bin, "merge", checkpoint, "-o", "\(work)/no/dir/m.f2w"], timeout: 60)
        XCTAssertEqual(missing.exitCode, 74, missing.output)
        XCTAssertTrue(
            missing.output.contains("error: \(work)/no/dir/m.f2w: cannot create: No such file or directory"),
            "the file asked for, not its temporary: \(missing.output)")
        let exportOver = try ProcessRunner.run([bin, "export", "\(work)/m.f2w", "-o", "\(work)/./m.f2w"], timeout: 60)
        XCTAssertEqual(exportOver.exitCode, 64, exportOver.output)
        try FileManager.default.copyItem(atPath: "\(work)/m.f2w", toPath: "\(work)/w.tmp")  // written as w's temporary
        let overTemporary = try ProcessRunner.run([bin, "export", "\(work)/w.tmp", "-o", "\(work)/w"], timeout: 60)
        XCTAssertEqual(overTemporary.exitCode, 64, overTemporary.output)
        let images = "\(work)/faces"
        try FileManager.default.copyItem(atPath: "\(Self.dataDir)/testA", toPath: images)
        let listing = try FileManager.default.subpathsOfDirectory(atPath: images).sorted()
        let inPlace = try ProcessRunner.run(
            [bin, "translate", "--checkpoint", checkpoint, "--input", images, "--output", images], timeout: 60)
        XCTAssertEqual(inPlace.exitCode, 64, inPlace.output)
        XCTAssertTrue(inPlace.output.contains("would overwrite the input image of that name"), inPlace.output)
        XCTAssertEqual(try FileManager.default.subpathsOfDirectory(atPath: images).sorted(), listing)
    }
}
