import Foundation
import XCTest

@testable import Engine

/// `TensorMemory.releaseFreedMemory`: free heap blocks between live ones are given back when the heap has grown
/// since the last call, or when more than the kept amount is free; otherwise they keep their pages. Released blocks
/// stay usable.
final class FreedMemoryTests: XCTestCase {
    func residentMiB() -> Double {
        let statm = try! String(contentsOfFile: "/proc/self/statm", encoding: .utf8).split(separator: " ")
        return Double(Int(statm[1])! * Int(sysconf(Int32(_SC_PAGESIZE)))) / 1_048_576
    }

    func testFreedHeapBlocksAreReturnedWhenTheHeapGrewOrTooMuchIsFree() {
        Runtime.keepFreedMemory()  // 4 MiB blocks come from the heap, and the heap keeps what is freed
        let seenBefore = TensorMemory.heapSeen
        TensorMemory.heapSeen = 0  // whatever earlier tests in this process did, the heap has grown since "then"
        defer { TensorMemory.heapSeen = seenBefore }
        // 32 holes of 4 MiB (128 MiB) between live 4 MiB blocks, so that neither free nor the heap top returns them
        func holes() -> [Tensor] { (0..<32).map { _ in Tensor(zeros: [1 << 20]) } }
        var live: [Tensor] = []
        var h: [Tensor] = []
        for _ in 0..<32 {
            h.append(Tensor(zeros: [1 << 20]))
            live.append(Tensor(zeros: [1 << 20]))
        }
        h.removeAll()
        var before = residentMiB()
        XCTAssertTrue(TensorMemory.releaseFreedMemory(above: .max), "the heap grew by 256 MiB: trimmed")
        XCTAssertLessThan(residentMiB(), before - 100, "the holes' pages were released")
        // the same number of blocks again, faulted in and freed; then, as if the heap had not grown (posix_memalign's
        // alignment slack may place some at the top), only the amount free decides
        h = holes()
        h.removeAll()
        TensorMemory.heapSeen = .max
        let free = TensorMemory.freedHeapBytes  // the holes, and whatever earlier tests left free
        XCTAssertGreaterThanOrEqual(free, 128 << 20)
        before = residentMiB()
        XCTAssertFalse(  // a margin for what reading RSS allocates meanwhile
            TensorMemory.releaseFreedMemory(above: free + (16 << 20)), "no growth, not more than `above` free: kept")
        XCTAssertEqual(residentMiB(), before, accuracy: 8, "nothing released")
        XCTAssertTrue(TensorMemory.releaseFreedMemory(above: free - (64 << 20)))
        XCTAssertLessThan(residentMiB(), before - 100, "the holes' pages were released")
        // the released blocks are reused and work
        let again = Tensor(zeros: [1 << 20])
        again.fill(2)
        XCTAssertEqual(again.buffer.reduce(0, +), 2 * Float(1 << 20))
        XCTAssertEqual(live.count, 32)
    }

    /// Once the heap has stopped growing and is no larger than the amount kept, the check costs no mallinfo2 walk;
    /// when it grows again, it is walked and trimmed; and every `maxSkipped` + 1 calls it is walked anyway.
    func testAHeapThatNeitherGrewNorHoldsTooMuchIsNotWalked() {
        Runtime.keepFreedMemory()
        let saved = (TensorMemory.heapSeen, TensorMemory.heapStart, TensorMemory.lastStart, TensorMemory.skipped)
        defer {
            (TensorMemory.heapSeen, TensorMemory.heapStart, TensorMemory.lastStart, TensorMemory.skipped) = saved
        }
        (TensorMemory.heapSeen, TensorMemory.heapStart, TensorMemory.lastStart) = (0, nil, nil)
        // two walks that agree on where the heap starts (nothing is allocated in between)
        TensorMemory.releaseFreedMemory(above: .max)
        TensorMemory.releaseFreedMemory(above: .max)
        XCTAssertNotNil(TensorMemory.heapStart, "two walks of a brk heap agree")
        var checks = TensorMemory.fullChecks
        XCTAssertFalse(TensorMemory.releaseFreedMemory(above: .max))
        XCTAssertEqual(TensorMemory.fullChecks, checks, "not grown, at most `above` bytes: no walk")
        // below the heap's present size (not `heapSeen`: the first walk may have trimmed the heap since): walked,
        // and trimmed if more than half of it is free
        TensorMemory.releaseFreedMemory(above: TensorMemory.heapBytes / 2)
        XCTAssertEqual(TensorMemory.fullChecks, checks + 1, "a heap larger than `above` may hold more free: walked")
        // at most `maxSkipped` answers in a row without a walk
        checks = TensorMemory.fullChecks
        for _ in 0...TensorMemory.maxSkipped { TensorMemory.releaseFreedMemory(above: .max) }
        XCTAssertEqual(TensorMemory.fullChecks, checks + 1, "one walk in maxSkipped + 1 calls")
        // grow the heap past the largest size seen: more 4 MiB blocks than that leaves room for in the heap, then
        // free every other one (holes that the top cannot return)
        let count = (TensorMemory.heapSeen - TensorMemory.heapBytes + TensorMemory.freedHeapBytes) / (4 << 20) + 16
        var blocks = (0..<count).map { _ in Tensor(zeros: [1 << 20]) }
        for i in stride(from: 0, to: count, by: 2) { blocks[i] = Tensor(zeros: [1]) }
        checks = TensorMemory.fullChecks
        XCTAssertTrue(TensorMemory.releaseFreedMemory(above: .max), "the heap grew: walked and trimmed")
        XCTAssertEqual(TensorMemory.fullChecks, checks + 1)
        XCTAssertEqual(blocks.count, count)
    }
}

/// `Runtime.hugePageTunables`: malloc's huge pages are asked for only in the kernel's `madvise` mode, and what the
/// user set wins.
final class HugePageTunablesTests: XCTestCase {
    func testOnlyInMadviseModeAndNeverOverTheUsersChoice() {
        let madvise = "always [madvise] never\n"
        XCTAssertEqual(Runtime.hugePageTunables(current: nil, optOut: false, transparentHugePages: madvise),
            "glibc.malloc.hugetlb=1")
        XCTAssertEqual(
            Runtime.hugePageTunables(current: "glibc.malloc.arena_max=2", optOut: false, transparentHugePages: madvise),
            "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1")
        XCTAssertNil(Runtime.hugePageTunables(current: "glibc.malloc.hugetlb=0", optOut: false, transparentHugePages: madvise))
        XCTAssertNil(Runtime.hugePageTunables(current: nil, optOut: true, transparentHugePages: madvise))
        XCTAssertNil(Runtime.hugePageTunables(current: nil, optOut: false, transparentHugePages: "[always] madvise never"))
        XCTAssertNil(Runtime.hugePageTunables(current: nil, optOut: false, transparentHugePages: "always madvise [never]"))
        XCTAssertNil(Runtime.hugePageTunables(current: nil, optOut: false, transparentHugePages: nil))
    }
}
