import Dataset
import Foundation
import XCTest

/// Demo data generated once per test class (40 px, 16 training and 4 test images per domain, seed 1) and a fresh work
/// folder per test, both removed afterwards: the fixture of the black-box training tests that run the binary.
class DemoDataTestCase: XCTestCase {
    nonisolated(unsafe) private static var folders: [String: String] = [:]
    /// This test class's data folder (trainA, trainB, testA, testB).
    static var dataDir: String { folders["\(self)"] ?? "" }
    /// This test's own folder.
    var work = ""

    override class func setUp() {
        super.setUp()
        let dir = NSTemporaryDirectory() + "f2w-\(self)-data-\(getpid())"
        try? DemoData.generate(
            to: URL(fileURLWithPath: dir), size: 40, trainPerDomain: 16, testPerDomain: 4, seed: 1)
        folders["\(self)"] = dir
    }

    override class func tearDown() {
        if let dir = folders.removeValue(forKey: "\(self)") { try? FileManager.default.removeItem(atPath: dir) }
        super.tearDown()
    }

    override func setUpWithError() throws {
        work = NSTemporaryDirectory() + "f2w-\(type(of: self))-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: work) }
}
