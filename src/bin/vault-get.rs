fn main() -> std::process::ExitCode {
    manifest::cli::main(vault_get::command, vault_get::run)
}
