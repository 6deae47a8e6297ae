fn main() -> std::process::ExitCode {
    toolkit::cli::main(vault_prune::command, vault_prune::run)
}
