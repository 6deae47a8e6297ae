fn main() -> std::process::ExitCode {
    manifest::cli::main(dump_pg::command, dump_pg::run)
}
