fn main() -> std::process::ExitCode {
    toolkit::cli::main(dump_pg::command, dump_pg::run)
}
