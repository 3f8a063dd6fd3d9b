//! The `eifield` command.

fn main() -> std::process::ExitCode {
    return_big_blocks_to_the_system();
    eifield::commands::cli::main()
}

/// Serves every allocation of 1 MiB or more from its own mapping (glibc
/// otherwise raises that threshold to the largest block freed so far, up
/// to 32 MiB, and keeps freed blocks below it). A big lattice's tables grow
/// by doubling as its oscillators are spawned; with this, each growth is a
/// remapping (no copy) and the block it replaces goes back to the system
/// instead of staying in the process, unused.
fn return_big_blocks_to_the_system() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: called first thing, before any other thread exists; it only
    // changes where later allocations come from.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}
