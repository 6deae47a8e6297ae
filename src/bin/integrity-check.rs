fn main() -> std::process::ExitCode {
    toolkit::cli::main(integrity_check::command, integrity_check::run)
}
