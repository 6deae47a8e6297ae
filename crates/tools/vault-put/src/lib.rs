pub fn command() -> clap::Command {
    clap::Command::new("vault-put")
}
pub fn run(_: &clap::ArgMatches) -> anyhow::Result<()> {
    Ok(())
}
