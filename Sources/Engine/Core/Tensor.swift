import CKernels
import CMalloc
import Foundation

/// A dense float32 tensor in row-major order (activations NCHW, conv weights OIHW, linear weights [out, in]).
///
/// A `Tensor` is a reference to 64-byte aligned storage: either its own allocation or a view into a larger
/// buffer (the parameter arena), kept alive through `owner`. Ops never mutate their inputs; they allocate outputs.
public final class Tensor {
    public let shape: [Int]
    public let count: Int
    public let data: UnsafeMutablePointer<Float>
    private let owner: AnyObject?
    private let ownsMemory: Bool

    /// A tensor of `shape` whose contents are uninitialised (callers overwrite every element).
    public init(uninitialized shape: [Int]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in shape \(shape)")
        self.shape = shape
        self.count = shape.reduce(1, *)
        self.data = Tensor.allocate(count)
        self.owner = nil
        self.ownsMemory = true
    }

    /// A zero-filled tensor of `shape`.
    public convenience init(zeros shape: [Int]) {
        self.init(uninitialized: shape)
        Breakdown.span(.alloc) { data.initialize(repeating: 0, count: count) }  // zeroed memory is allocation work
    }

    /// A tensor filled with `value`.
    public convenience init(repeating value: Float, shape: [Int]) {
        self.init(uninitialized: shape)
        data.initialize(repeating: value, count: count)
    }

    /// A tensor holding `values` (row-major); `values.count` must equal the product of `shape`.
    public convenience init(shape: [Int], _ values: [Float]) {
        self.init(uninitialized: shape)
        precondition(values.count == count, "\(values.count) values for shape \(shape)")
        values.withUnsafeBufferPointer { data.update(from: $0.baseAddress!, count: count) }
    }

    /// A view of `count(shape)` floats at `data`, kept valid by `owner`.
    public init(view data: UnsafeMutablePointer<Float>, shape: [Int], owner: AnyObject) {
        self.shape = shape
        self.count = shape.reduce(1, *)
        self.data = data
        self.owner = owner
        self.ownsMemory = false
    }

    deinit {
        if ownsMemory {
            TensorMemory.release(count)
            Breakdown.span(.alloc) { free(data) }
        }
    }

    private static func allocate(_ n: Int) -> UnsafeMutablePointer<Float> {
        var p: UnsafeMutableRawPointer?
        // 64-byte alignment: whole cache lines and aligned AVX-512 loads for the hot loops.
        let rc = Breakdown.span(.alloc) { posix_memalign(&p, 64, max(n, 1) * MemoryLayout<Float>.stride) }
        guard rc == 0, let raw = p else { fatalError("out of memory allocating \(n) floats") }
        TensorMemory.claim(n)
        return raw.bindMemory(to: Float.self, capacity: max(n, 1))
    }

    public var rank: Int { shape.count }
    public var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: data, count: count) }
    /// The elements as an array (a copy).
    public var array: [Float] { Array(buffer) }
    public subscript(i: Int) -> Float {
        get { data[i] }
        set { data[i] = newValue }
    }

    /// An independent copy.
    public func copy() -> Tensor {
        let t = Tensor(uninitialized: shape)
        t.data.update(from: data, count: count)
        return t
    }

    /// Same storage, new shape with the same element count (no copy; the view keeps `self` alive).
    public func reshaped(_ newShape: [Int]) -> Tensor {
        precondition(newShape.reduce(1, *) == count, "cannot reshape \(shape) to \(newShape)")
        return Tensor(view: data, shape: newShape, owner: self)
    }

    /// Copies `other`'s elements into self (shapes must have the same element count).
    public func assign(_ other: Tensor) {
        precondition(other.count == count, "assign: \(other.shape) into \(shape)")
        data.update(from: other.data, count: count)
    }

    public func fill(_ value: Float) { data.update(repeating: value, count: count) }

    /// self += other, element-wise (same element count).
    public func add(_ other: Tensor) {
        precondition(other.count == count, "add: \(other.shape) into \(shape)")
        let a = data
        let b = other.data
        Breakdown.span(.elementwise) { for i in 0..<count { a[i] += b[i] } }
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let head = (0..<min(count, 8)).map { String(format: "%.5g", data[$0]) }.joined(separator: ", ")
        return "Tensor(\(shape): [\(head)\(count > 8 ? ", …" : "")])"
    }
}

/// Dimensions of an NCHW activation.
@usableFromInline
struct NCHW {
    let n: Int, c: Int, h: Int, w: Int
    init(_ t: Tensor, _ op: String) {
        precondition(t.rank == 4, "\(op) expects an NCHW tensor, got shape \(t.shape)")
        n = t.shape[0]
        c = t.shape[1]
        h = t.shape[2]
        w = t.shape[3]
    }
    var plane: Int { h * w }
}

extension Tensor {
    /// Whether every element is finite (no NaN, no ±inf).
    public var isFinite: Bool { Tensor.allFinite(data, count: count) }

    /// Whether the `count` floats from p are all finite, at memory speed (`f2w_all_finite`: the Swift loop ran
    /// scalar, 1.8% of a 2-thread step at 128/32 where every gradient is checked before its all-reduce).
    public static func allFinite(_ p: UnsafePointer<Float>, count: Int) -> Bool { f2w_all_finite(count, p) != 0 }
}

/// Bytes held by tensors that own their storage (views excluded), and the peak since the last reset: what the
/// memory estimate measures a calibration step with.
public enum TensorMemory {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var live = 0, peak = 0

    static func claim(_ n: Int) {
        lock.lock()
        live += 4 * n
        if live > peak { peak = live }
        lock.unlock()
    }
    static func release(_ n: Int) {
        lock.lock()
        live -= 4 * n
        lock.unlock()
    }

    /// Bytes of tensor storage allocated now.
    public static var liveBytes: Int {
        lock.lock()
        defer { lock.unlock() }
        return live
    }
    /// The most bytes of tensor storage held at once since `resetPeak()`.
    public static var peakBytes: Int {
        lock.lock()
        defer { lock.unlock() }
        return peak
    }
    /// Starts a new peak from the bytes held now.
    public static func resetPeak() {
        lock.lock()
        peak = live
        lock.unlock()
    }

    /// Bytes of free blocks in the heap (glibc's mallinfo2 fordblks), resident or not.
    public static var freedHeapBytes: Int { Int(mallinfo2().fordblks) }
    /// Bytes of the heap, free or not (glibc's mallinfo2 arena).
    static var heapBytes: Int { Int(mallinfo2().arena) }

    /// Freed heap memory kept for reuse before `releaseFreedMemory` gives it back: the same 1 GiB that
    /// `Runtime.keepFreedMemory` keeps at the top of the heap.
    public static let freedMemoryKept = 1 << 30

    /// The heap's size (glibc's mallinfo2 arena) at the last `releaseFreedMemory`.
    nonisolated(unsafe) static var heapSeen = 0
    /// Where the heap starts: the program break less mallinfo2's arena, once two consecutive full checks agree on it
    /// (nil otherwise: then every call walks). `lastStart` is the last full check's.
    nonisolated(unsafe) static var heapStart: Int?
    nonisolated(unsafe) static var lastStart: Int?
    /// Calls answered without mallinfo2 since the last walk; at most `maxSkipped` in a row.
    nonisolated(unsafe) static var skipped = 0
    static let maxSkipped = 15
    /// How many calls of `releaseFreedMemory` read mallinfo2 (for tests).
    nonisolated(unsafe) static var fullChecks = 0

    /// Returns the pages of free heap blocks to the kernel (glibc's malloc_trim, which also merges the small free
    /// blocks) when the heap has grown since the last call, or when more than `keep` bytes of it are free; the
    /// blocks stay free and are faulted in again when reused. Returns whether it trimmed. Call it where a phase's
    /// temporaries have just been freed, from one thread at a time: `UGATITStep` does after each update (under
    /// mpirun with overlap the D update runs inside the G phase, before judging, so that trim also sees the
    /// generators' live activations; the 256/64 figures below are from one process).
    ///
    /// Why: `Runtime.keepFreedMemory` keeps freed blocks in the heap, but at 256/64 blocks of one size often did not
    /// fit the holes that others left: after the first step 2-3 GB of the heap was free at the end of each update,
    /// and peak RSS was 5,340-5,384 MiB for a 4,806 MiB tensor peak. Trimming (and merging) while the heap still
    /// grows lays the next phase out more tightly (docs/training.md "Huge pages"). Once it stops growing, a model
    /// whose free heap stays under `keep` (128/32 and below) is not trimmed again: there, faulting the pages back in
    /// every update cost 20-30% of a step (measured at 96/16).
    ///
    /// mallinfo2 walks every free block (2-3 ms a call at 96/16, twice a step), so it is skipped when the program
    /// break says enough: a heap that has not grown since and is no larger than `keep` cannot hold more than `keep`
    /// free bytes. That holds while the heap is the brk segment (`Runtime.keepFreedMemory`'s single arena), which
    /// shows as a constant distance between the break and mallinfo2's arena; an arena that grows by mmap (one made
    /// before the limit, or a main arena that could not extend the break) changes that distance, and then every call
    /// walks. At most `maxSkipped` calls in a row are skipped all the same.
    @discardableResult
    public static func releaseFreedMemory(above keep: Int = freedMemoryKept) -> Bool {
        let brk = Int(bitPattern: sbrk(0))
        if let start = heapStart, skipped < maxSkipped, brk - start <= min(heapSeen, keep) {
            skipped += 1
            return false
        }
        skipped = 0
        let info = mallinfo2()
        fullChecks += 1
        let (heap, free) = (Int(info.arena), Int(info.fordblks))
        // the break read again: if another thread moved it meanwhile, the distance is not trusted
        let start = Int(bitPattern: sbrk(0)) == brk ? brk - heap : nil
        heapStart = start != nil && start == lastStart ? start : nil
        lastStart = start
        defer { heapSeen = max(heapSeen, heap) }
        guard heap > heapSeen || free > keep else { return false }
        return malloc_trim(0) == 1
    }
}
