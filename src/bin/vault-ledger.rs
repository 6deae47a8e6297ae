fn main() -> std::process::ExitCode {
    toolkit::cli::main(vault_ledger::command, vault_ledger::run)
}
