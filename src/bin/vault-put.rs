fn main() -> std::process::ExitCode {
    manifest::cli::main(vault_put::command, vault_put::run)
}
