//! Standard output that fails like a Unix tool: a closed pipe (`kernelab train | head -1`) ends
//! the program quietly, as it ends `cat` (SIGPIPE's default action, which Rust programs turn off),
//! and any other failure to write (`> /dev/full`) is an error message and status 1, never a panic.

use std::io::Write;

/// Lets a write to a closed pipe end the process, as it does every other Unix filter.
pub fn die_on_broken_pipe() {
    #[cfg(unix)]
    {
        unsafe extern "C" {
            fn signal(signum: i32, handler: usize) -> usize;
        }
        const SIGPIPE: i32 = 13;
        const SIG_DFL: usize = 0;
        // SAFETY: restores the default disposition of one signal before any thread exists.
        unsafe { signal(SIGPIPE, SIG_DFL) };
    }
}

/// Writes one line to standard output; on failure, says so on stderr and exits with status 1.
pub fn line(args: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.write_all(b"\n")).and_then(|()| out.flush()) {
        eprintln!("error: writing to standard output: {e}");
        std::process::exit(1);
    }
}

/// `println!` for the CLI's results: see [`line`].
macro_rules! outln {
    () => { $crate::out::line(format_args!("")) };
    ($($arg:tt)*) => { $crate::out::line(format_args!($($arg)*)) };
}
pub(crate) use outln;
