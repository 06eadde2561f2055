//! The `ebmkit` command line: a thin wrapper over the library, one file
//! per subcommand under `src/cli/`.

#![warn(clippy::too_many_lines)]

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
