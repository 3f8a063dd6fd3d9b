//! The `eifield` command.

fn main() -> std::process::ExitCode {
    eifield::cli::main()
}
