//! Log output: tracing to stderr in the format every Holdfast process shares
//! (`holdfast_proto::logfmt`): `[INFO] 2026-01-02 03:04:05.678 [handler] message` (UTC).

/// Installs the global subscriber for Pushpin log level `level` (0 error .. 4 trace).
pub fn init(level: u8) {
    holdfast_proto::logfmt::init("handler", level);
}
