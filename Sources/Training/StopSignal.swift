import Foundation

/// SIGTERM (Slurm's time limit, `scancel`), SIGINT (Ctrl-C) and SIGHUP (the terminal or ssh session closed) ask
/// the run to stop after the current step with a checkpoint, so that a job killed on schedule loses nothing. A second
/// signal of the same kind is left to its default action (terminate at once). A signal the process started with
/// ignored stays ignored: `nohup train ...` keeps running when its session closes. SIGPIPE is ignored: a closed
/// output pipe (`train ... | head`) must not kill a run without its checkpoint; writes to it fail instead, and
/// training goes on.
public enum StopSignal {
    nonisolated(unsafe) static var received: Int32 = 0

    /// Installs the handlers (idempotent).
    public static func install() {
        signal(SIGPIPE, SIG_IGN)
        for sig in [SIGTERM, SIGINT, SIGHUP] {
            let before = signal(sig, SIG_IGN)  // the disposition the process was started with
            if unsafeBitCast(before, to: Int.self) == unsafeBitCast(SIG_IGN, to: Int.self) { continue }  // nohup
            signal(sig) { s in
                StopSignal.received = s
                signal(s, SIG_DFL)  // a second Ctrl-C ends the process immediately
            }
        }
    }

    /// The signal received so far, or 0.
    public static var pending: Int32 { received }
}
