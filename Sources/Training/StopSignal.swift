import Foundation

/// SIGTERM (Slurm's time limit, `scancel`) and SIGINT (Ctrl-C) ask the run to stop after the current step with a
/// checkpoint, so that a job killed on schedule loses nothing. A second signal of the same kind is left to its
/// default action (terminate at once).
public enum StopSignal {
    nonisolated(unsafe) static var received: Int32 = 0

    /// Installs the handlers (idempotent).
    public static func install() {
        for sig in [SIGTERM, SIGINT] {
            signal(sig) { s in
                StopSignal.received = s
                signal(s, SIG_DFL)  // a second Ctrl-C ends the process immediately
            }
        }
    }

    /// The signal received so far, or 0.
    public static var pending: Int32 { received }
}
