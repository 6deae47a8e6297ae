fn main() -> std::process::ExitCode {
    toolkit::cli::main(snap_qdrant::command, snap_qdrant::run)
}
