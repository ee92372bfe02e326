import XCTest

@testable import Checkpoint

final class PrimitiveTests: XCTestCase {
    /// Published XXH64 vectors (xxHash repository and the python-xxhash README), seed 0 unless noted.
    func testXXH64KnownVectors() {
        XCTAssertEqual(XXH64.hash([]), 0xEF46_DB37_51D8_E999)
        XCTAssertEqual(XXH64.hash(Array("a".utf8)), 0xD24E_C4F1_A98C_6E5B)
        XCTAssertEqual(XXH64.hash(Array("abc".utf8)), 0x44BC_2CF5_AD77_0999)
        XCTAssertEqual(XXH64.hash(Array("xxhash".utf8)), 0x32DD_3895_2C4B_C720)
        XCTAssertEqual(XXH64.hash(Array("xxhash".utf8), seed: 20_141_025), 0xB559_B98D_844E_0635)
        XCTAssertEqual(XXH64.hash(Array("Nobody inspects the spammish repetition".utf8)), 0xFBCE_A83C_8A37_8BF1)
    }

    func testXXH64StreamingEqualsOneShotForEverySplit() {
        let data = (0..<200).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        let whole = XXH64.hash(data)
        for a in [0, 1, 7, 31, 32, 33, 64, 100, 199, 200] {
            for b in [a, min(a + 3, 200), min(a + 40, 200), 200] {
                var h = XXH64()
                data.withUnsafeBytes { raw in
                    h.update(UnsafeRawBufferPointer(rebasing: raw[0..<a]))
                    h.update(UnsafeRawBufferPointer(rebasing: raw[a..<b]))
                    h.update(UnsafeRawBufferPointer(rebasing: raw[b...]))
                }
                XCTAssertEqual(h.digest(), whole, "split at \(a), \(b)")
            }
        }
    }

    func testHexIsStrict() {
        XCTAssertEqual(Hex.string(0xAB), "00000000000000ab")
        XCTAssertEqual(Hex.parse("00000000000000ab"), 0xAB)
        XCTAssertNil(Hex.parse("00000000000000AB"))  // uppercase is not the canonical form
        XCTAssertNil(Hex.parse("ab"))
        XCTAssertNil(Hex.parse("+0000000000000ab"))
    }

    func testShuffleMakesBytePlanesAndInverts() {
        for k in [4, 8] {
            let n = 37
            let src = (0..<n * k).map { UInt8(truncatingIfNeeded: $0) }
            var planes = [UInt8](repeating: 0, count: src.count)
            var back = planes
            src.withUnsafeBytes { s in
                planes.withUnsafeMutableBytes { ByteShuffle.shuffle(s, into: $0, elementSize: k) }
            }
            for i in 0..<n { for j in 0..<k { XCTAssertEqual(planes[j * n + i], src[i * k + j]) } }
            planes.withUnsafeBytes { s in
                back.withUnsafeMutableBytes { ByteShuffle.unshuffle(s, into: $0, elementSize: k) }
            }
            XCTAssertEqual(back, src, "element size \(k)")
        }
    }

    func testPlanIsGreedyLargestFirstAndBalanced() {
        let names = ["a", "b", "c", "d", "e", "f"]
        let sizes = [100, 60, 50, 40, 30, 20]
        let p = ShardPlan(names: names, byteCounts: sizes, worldSize: 2)
        // 100 -> r0; 60 -> r1; 50 -> r1 (110); 40 -> r0 (140); 30 -> r1 (140); 20 -> r0 (160)
        XCTAssertEqual(p.rank, [0, 1, 1, 0, 1, 0])
        XCTAssertEqual(p.bytes, [160, 140])
        XCTAssertEqual(p.tensors(of: 1), [1, 2, 4])
        // Independent of input order: the same tensor always goes to the same rank.
        let q = ShardPlan(names: names.reversed(), byteCounts: sizes.reversed(), worldSize: 2)
        XCTAssertEqual(q.rank.reversed(), p.rank)
        // More ranks than tensors: some shards are empty, none gets two.
        XCTAssertEqual(ShardPlan(names: ["x", "y"], byteCounts: [5, 5], worldSize: 4).bytes, [5, 5, 0, 0])
    }

    func testResultRecordRoundTripsAndFailureCarriesMessage() {
        let plan = ShardPlan(names: ["a", "b", "c"], byteCounts: [40000, 10, 20], worldSize: 2)
        let frames = [3, 1, 1]
        let size = ResultRecord.size(plan: plan, frames: frames)
        var w = ShardWriteResult()
        w.fileBytes = 999
        w.fileXXH64 = 0xDEAD_BEEF
        w.tensors = [.init(xxh64: 11, frames: [(5, 1), (6, 2), (7, 3)])]
        let block = ResultRecord.encode(.success(w), host: "node7", size: size)
        XCTAssertEqual(block.count, size)
        let r = ResultRecord.decode(block, rank: 0, plan: plan, frames: frames)
        XCTAssertNil(r.error)
        XCTAssertEqual(r.host, "node7")
        XCTAssertEqual(r.fileBytes, 999)
        XCTAssertEqual(r.tensors.first?.frames.map(\.bytes), [5, 6, 7])
        let failed = ResultRecord.encode(
            .failure(CheckpointError.io(path: "/x", reason: "No space left on device")), host: "n", size: size)
        XCTAssertEqual(failed.count, size)
        XCTAssertEqual(
            ResultRecord.decode(failed, rank: 1, plan: plan, frames: frames).error, "/x: No space left on device")
    }

    func testStepDirectoryNames() {
        XCTAssertEqual(Names.stepDirectory(1000), "step_00001000")
        XCTAssertEqual(Names.stepDirectory(123_456_789), "step_123456789")
        XCTAssertEqual(Names.step(of: "step_00001000"), 1000)
        XCTAssertNil(Names.step(of: "step_"))
        XCTAssertNil(Names.step(of: "step_12a"))
        XCTAssertNil(Names.step(of: "step_../x"))
    }
}

final class JSONValueTests: XCTestCase {
    func testNumbersCompareByValueAcrossCases() {
        XCTAssertEqual(JSONValue.uint(7), .int(7))
        XCTAssertEqual(JSONValue.double(2), .int(2))
        XCTAssertNotEqual(JSONValue.int(-1), .uint(UInt64.max))
        XCTAssertNotEqual(JSONValue.double(0.5), .int(0))
        XCTAssertNotEqual(JSONValue.string("1"), .int(1))
    }

    func testRoundTripKeepsAll64Bits() throws {
        let v = JSONValue.object([
            "a": .uint(UInt64.max), "b": .int(Int64.min), "c": .double(0.1), "d": .array([.null, .bool(true)]),
        ])
        let back = try JSONDecoder().decode(JSONValue.self, from: JSONEncoder().encode(v))
        XCTAssertEqual(back, v)
        guard case .uint(UInt64.max)? = back["a"] else { return XCTFail("\(back)") }
    }
}
