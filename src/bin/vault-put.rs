fn main() -> std::process::ExitCode {
    toolkit::cli::main(vault_put::command, vault_put::run)
}
