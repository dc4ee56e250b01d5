//! cubeserver, as `server/src/main.rs` builds it, for the end-to-end tests of this package.

fn main() -> std::process::ExitCode {
    cubeserver::cli_main()
}
