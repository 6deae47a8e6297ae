pub fn command() -> clap::Command {
    clap::Command::new("dump-pg")
}
pub fn run(_: &clap::ArgMatches) -> anyhow::Result<()> {
    Ok(())
}
