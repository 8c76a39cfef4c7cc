//! The commands of the binary, above every other layer: `run`, `sync-once`, `export`,
//! `healthcheck`, `demo` and `sim`, and the process plumbing they share (logging, signals, memory).

pub mod changes;
pub mod demo;
pub mod export;
pub mod healthcheck;
pub mod logging;
pub mod memory;
pub mod root;
pub mod run;
pub mod shutdown;
pub mod sim;
pub mod sync_once;

/// Writes `text` to stdout. A reader that went away first (`ses-inventory sync-once | head`)
/// is not this command's failure: its work is done and its exit status says how that went.
/// (`print!` would panic there: Rust ignores SIGPIPE, so the write fails with `EPIPE`.)
pub fn print_stdout(text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        written => written,
    }
}
