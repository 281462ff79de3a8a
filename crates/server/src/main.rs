fn main() -> std::process::ExitCode {
    stonepot_server::cli::main()
}
