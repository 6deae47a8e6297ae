pub fn command() -> clap::Command {
    clap::Command::new("vault-get")
}
pub fn run(_: &clap::ArgMatches) -> anyhow::Result<()> {
    Ok(())
}
