import Engine
import Foundation
import TestSupport
import XCTest

/// SafeTensorsFile: encode/decode round trip, other dtypes on read, and typed errors (never a crash) for
/// malformed files.
final class SafeTensorsTests: XCTestCase {
    /// A safetensors file from a JSON header and raw data bytes (the length prefix is computed).
    private func file(_ header: String, _ data: [UInt8], headerLength: UInt64? = nil) -> Data {
        let json = Array(header.utf8)
        var out = Data()
        withUnsafeBytes(of: (headerLength ?? UInt64(json.count)).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: json)
        out.append(contentsOf: data)
        return out
    }

    private func bytes(_ floats: [Float]) -> [UInt8] {
        floats.flatMap { f in withUnsafeBytes(of: f.bitPattern.littleEndian) { Array($0) } }
    }

    /// Asserts that parsing `data` throws `.malformed` whose reason contains `fragment`.
    private func assertMalformed(_ data: Data, _ fragment: String, file f: StaticString = #filePath, line: UInt = #line)
    {
        XCTAssertThrowsError(try SafeTensorsFile(data: data, path: "t.safetensors"), file: f, line: line) { error in
            guard case SafeTensorsError.malformed(let path, let reason)? = error as? SafeTensorsError else {
                return XCTFail("expected .malformed, got \(error)", file: f, line: line)
            }
            XCTAssertEqual(path, "t.safetensors", file: f, line: line)
            XCTAssert(
                reason.contains(fragment), "reason \"\(reason)\" does not mention \"\(fragment)\"", file: f, line: line)
        }
    }

    // MARK: - Round trip

    func testEncodeDecodeRoundTrip() throws {
        var rng = testRNG("safetensors")
        let a = rng.normalTensor([2, 3, 4])
        let b = rng.normalTensor([5])
        let s = Tensor(shape: [], [3.25])
        let special = Tensor(shape: [4], [.infinity, -0.0, .leastNonzeroMagnitude, .greatestFiniteMagnitude])
        let meta = ["case": "round trip", "lr": "0.0001", "unicode": "Ωmega ✓"]
        let data = try SafeTensorsFile.encode(
            [("a", a), ("b", b), ("scalar", s), ("special", special)], metadata: meta)
        let f = try SafeTensorsFile(data: data, path: "memory")
        XCTAssertEqual(f.names, ["a", "b", "scalar", "special"], "file order is the encoding order")
        XCTAssertEqual(f.metadata, meta)
        for (name, t) in [("a", a), ("b", b), ("scalar", s), ("special", special)] {
            XCTAssertEqual(f.entry(name)?.dtype, "F32")
            assertBitwiseEqual(try f.tensor(name), t, name)
        }
        // the data section starts 8-byte aligned
        let n = data.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        XCTAssertEqual((8 + n) % 8, 0)

        // through a file on disk
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("engine-tests-\(UUID()).safetensors")
        try data.write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        let g = try SafeTensorsFile(path: url.path)
        assertBitwiseEqual(try g.tensor("a"), a, "from disk")
        XCTAssertEqual(g.metadata, meta)
    }

    /// An empty tensor shares its offset with the next tensor; when that one's name sorts first, the reader used
    /// to report a false overlap (fixed in SafeTensors.swift: empty ranges are left out of the overlap check).
    func testEmptyMetadataAndEmptyTensor() throws {
        let data = try SafeTensorsFile.encode([("z", Tensor(zeros: [0, 3])), ("one", Tensor(shape: [1], [1]))])
        let f = try SafeTensorsFile(data: data, path: "memory")
        XCTAssertEqual(f.metadata, [:])
        XCTAssertEqual(try f.tensor("z").shape, [0, 3])
        XCTAssertEqual(try f.tensor("one").array, [1])
    }

    func testReadsOtherFloatDTypes() throws {
        let f64 = [1.5, -2.25].flatMap { d in withUnsafeBytes(of: d.bitPattern.littleEndian) { Array($0) } }
        let f16: [UInt8] = [0x00, 0x3C, 0x00, 0xC0]  // 1.0, −2.0
        let bf16: [UInt8] = [0x80, 0x3F, 0x40, 0x40]  // 1.0, 3.0 (upper halves of float32)
        let header =
            #"{"a":{"dtype":"F64","shape":[2],"data_offsets":[0,16]},"#
            + #""b":{"dtype":"F16","shape":[2],"data_offsets":[16,20]},"#
            + #""c":{"dtype":"BF16","shape":[2],"data_offsets":[20,24]}}"#
        let f = try SafeTensorsFile(data: file(header, f64 + f16 + bf16), path: "dtypes")
        XCTAssertEqual(try f.tensor("a").array, [1.5, -2.25])
        XCTAssertEqual(try f.tensor("b").array, [1, -2])
        XCTAssertEqual(try f.tensor("c").array, [1, 3])
    }

    func testEveryFixtureParses() throws {
        let dir = try XCTUnwrap(Bundle.module.url(forResource: "Fixtures", withExtension: nil))
        let urls = try FileManager.default.contentsOfDirectory(at: dir, includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "safetensors" }
        XCTAssertGreaterThanOrEqual(urls.count, 36)
        for url in urls {
            let f = try Fixture(url: url)
            for key in ["case", "kind", "seed", "torch_version"] {
                XCTAssertNotNil(f.metadata[key], "\(f.name): \(key)")
            }
            XCTAssertEqual(f.metadata["case"], f.name)
            for e in f.file.entries { XCTAssertEqual(e.dtype, "F32", "\(f.name): \(e.name)") }
        }
    }

    // MARK: - Rejections (typed errors, no crash)

    private let good = #"{"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}"#

    func testValidHandmadeFileParses() throws {
        let f = try SafeTensorsFile(data: file(good, bytes([1, 2, 3, 4])), path: "t.safetensors")
        XCTAssertEqual(try f.tensor("a").array, [1, 2, 3, 4])
    }

    func testRejectsTruncatedFiles() {
        let whole = file(good, bytes([1, 2, 3, 4]))
        assertMalformed(whole.prefix(5), "shorter than the 8-byte header length")
        assertMalformed(whole.prefix(8 + 10), "header length")  // cut inside the header
        assertMalformed(whole.prefix(whole.count - 4), "outside the 12 data bytes")  // cut inside the data
    }

    func testRejectsHeaderLengthBeyondFile() {
        let body = Array(good.utf8)
        assertMalformed(file(good, bytes([1, 2, 3, 4]), headerLength: UInt64(body.count + 17)), "does not fit")
        assertMalformed(file(good, bytes([1, 2, 3, 4]), headerLength: UInt64.max), "does not fit")
    }

    func testRejectsOverlappingAndOutOfRangeOffsets() {
        let overlap =
            #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#
        assertMalformed(file(overlap, bytes([1, 2, 3])), "overlap")
        // an empty tensor between two overlapping ones does not hide the overlap
        let hidden =
            #"{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"e":{"dtype":"F32","shape":[0],"data_offsets":[4,4]},"#
            + #""y":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#
        assertMalformed(file(hidden, bytes([1, 2, 3])), "tensors x and y overlap")
        let outside = #"{"a":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}}"#
        assertMalformed(file(outside, bytes([1, 2, 3, 4])), "outside")
        let reversed = #"{"a":{"dtype":"F32","shape":[0],"data_offsets":[8,4]}}"#
        assertMalformed(file(reversed, bytes([1, 2, 3, 4])), "outside")
        let negative = #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}}"#
        assertMalformed(file(negative, bytes([1])), "outside")
    }

    func testRejectsShapeThatDoesNotMatchByteSize() {
        let short = #"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}}"#
        assertMalformed(file(short, bytes([1, 2, 3, 4])), "needs 12 bytes, offsets give 16")
        let huge = #"{"a":{"dtype":"F32","shape":[2147483647,2147483647,2147483647],"data_offsets":[0,16]}}"#
        assertMalformed(file(huge, bytes([1, 2, 3, 4])), "overflows")
        let negative = #"{"a":{"dtype":"F32","shape":[-1,4],"data_offsets":[0,16]}}"#
        assertMalformed(file(negative, bytes([1, 2, 3, 4])), "bad dimension")
    }

    func testRejectsUnknownDType() {
        let header = #"{"a":{"dtype":"I32","shape":[4],"data_offsets":[0,16]}}"#
        XCTAssertThrowsError(try SafeTensorsFile(data: file(header, bytes([1, 2, 3, 4])), path: "t.safetensors")) {
            error in
            XCTAssertEqual(
                error as? SafeTensorsError, .unsupportedDType(path: "t.safetensors", tensor: "a", dtype: "I32"))
        }
    }

    func testRejectsMalformedHeaders() {
        assertMalformed(file("not json", []), "not a JSON object")
        assertMalformed(file("[1, 2]", []), "not a JSON object")
        assertMalformed(file(#"{"__metadata__":[1]}"#, []), "__metadata__ is not an object")
        assertMalformed(file(#"{"a":{"dtype":"F32","shape":[1]}}"#, bytes([1])), "missing dtype, shape or data_offsets")
        assertMalformed(file(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}}"#, bytes([1])), "missing")
    }

    func testMissingTensorAndUnreadableFile() throws {
        let f = try SafeTensorsFile(data: file(good, bytes([1, 2, 3, 4])), path: "t.safetensors")
        XCTAssertThrowsError(try f.tensor("b")) { error in
            XCTAssertEqual(error as? SafeTensorsError, .missingTensor(path: "t.safetensors", name: "b"))
        }
        XCTAssertThrowsError(try SafeTensorsFile(path: "/nonexistent/dir/x.safetensors")) { error in
            guard case .unreadable(let path, _)? = error as? SafeTensorsError else { return XCTFail("\(error)") }
            XCTAssertEqual(path, "/nonexistent/dir/x.safetensors")
        }
    }
}
