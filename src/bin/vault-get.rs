fn main() -> std::process::ExitCode {
    toolkit::cli::main(vault_get::command, vault_get::run)
}
