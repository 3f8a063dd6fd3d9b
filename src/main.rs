//! The `eifield` command.

fn main() -> std::process::ExitCode {
    eifield::commands::cli::main()
}
