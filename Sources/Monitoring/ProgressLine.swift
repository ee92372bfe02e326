import Foundation

/// Progress of a long operation with a rate and an ETA, as the training progress line shows it: rewritten in place
/// on a terminal (at most 5 times a second), and on a pipe or a log file one plain line per 10% or per 30 seconds,
/// whichever comes first, from 2 seconds on, and a last line at `finish`. Without a total (a folder walk) it shows
/// the count and the rate.
public final class ProgressLine {
    let label: String
    let unit: String
    let total: Int?
    let start: Date
    let terminal: Bool
    let write: (String) -> Void
    var lastShown = Date.distantPast
    var lastDecile = 0
    var done = 0

    /// - Parameters: `terminal`: default whether stdout is a terminal; `write`: default stdout through `print`, flushed
    ///   (so the lines keep their place among the program's other output on a pipe); `start`: when the work began
    ///   (default now; earlier for a line made once the first part is done, so that its rate counts that part).
    public init(
        label: String, total: Int?, unit: String = "images", terminal: Bool? = nil, write: ((String) -> Void)? = nil,
        start: Date = Date()
    ) {
        self.start = start
        self.label = label
        self.total = total
        self.unit = unit
        self.terminal = terminal ?? (isatty(1) != 0)
        lastShown = start
        self.write =
            write ?? { s in
                print(s, terminator: "")
                fflush(stdout)
            }
    }

    /// `done` of `total` finished.
    public func update(_ done: Int) {
        self.done = done
        let now = Date()
        if terminal {
            guard now.timeIntervalSince(lastShown) >= 0.2 || done == total else { return }
            lastShown = now
            write("\r" + line(now) + "\u{1B}[K")
        } else {
            let decile = total.map { $0 > 0 ? 10 * done / $0 : 10 } ?? 0
            // a quick operation (under 2 s) writes only its last line
            guard now.timeIntervalSince(start) >= 2, decile > lastDecile || now.timeIntervalSince(lastShown) >= 30
            else { return }
            lastDecile = decile
            lastShown = now
            write(line(now) + "\n")
        }
    }

    /// The last line: ends the rewritten line on a terminal, or writes the final count on a pipe.
    public func finish() {
        if terminal {
            write("\r" + line(Date()) + "\u{1B}[K\n")
        } else if lastDecile < 10 {
            write(line(Date()) + "\n")
        }
    }

    func line(_ now: Date) -> String {
        let t = now.timeIntervalSince(start)
        let rate = t > 0 ? Double(done) / t : 0
        guard let total else {
            return String(format: "[face2webtoon] %@ %d %@ | %.2f %@/s", label, done, unit, rate, unit)
        }
        let eta = rate > 0 ? Double(total - done) / rate : .nan
        return String(
            format: "[face2webtoon] %@ %d/%d %@ | %.2f %@/s | ETA %@", label, done, total, unit, rate, unit,
            ProgressLine.duration(eta))
    }

    static func duration(_ s: Double) -> String {
        guard s.isFinite else { return "?" }
        let t = Int(s.rounded())
        return t >= 3600
            ? String(format: "%dh%02dm", t / 3600, (t % 3600) / 60) : String(format: "%dm%02ds", t / 60, t % 60)
    }
}
