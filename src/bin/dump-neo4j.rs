fn main() -> std::process::ExitCode {
    toolkit::cli::main(dump_neo4j::command, dump_neo4j::run)
}
