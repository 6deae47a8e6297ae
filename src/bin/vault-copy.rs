fn main() -> std::process::ExitCode {
    toolkit::cli::main(vault_copy::command, vault_copy::run)
}
