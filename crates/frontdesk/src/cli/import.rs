//! `frontdesk import asterisk --queues queues.conf --pjsip pjsip.conf
//! --extensions extensions.conf > clinic.toml`: an Asterisk set-up as a
//! dialplan on stdout, and on stderr every line not translated as
//! `FILE:LINE: message` (see [`crate::import::asterisk`]).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::import::asterisk::{self, config};

/// `frontdesk import …`.
#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Asterisk's queues.conf, pjsip.conf and extensions.conf as a dialplan on stdout; what
    /// is not translated goes to stderr as FILE:LINE: message.
    Asterisk(AsteriskArgs),
}

/// `frontdesk import asterisk`'s flags.
#[derive(Debug, Args)]
pub struct AsteriskArgs {
    /// queues.conf: the queues, their strategies, timeouts and members.
    #[arg(long)]
    queues: PathBuf,
    /// pjsip.conf: the members' endpoints and their digest credentials.
    #[arg(long)]
    pjsip: PathBuf,
    /// extensions.conf: the numbers that reach Queue(), the Background/WaitExten menus.
    #[arg(long)]
    extensions: PathBuf,
    /// The clinic's name in the dialplan.
    #[arg(long, default_value = "Imported from Asterisk")]
    name: String,
    /// The clinic's IANA time zone (Asterisk's dialplan does not say it).
    #[arg(long, default_value = "UTC")]
    time_zone: String,
}

/// Runs `frontdesk import`. Exit 0 with the dialplan on stdout (the
/// report on stderr, whatever it holds); 1 when a file cannot be read or
/// is over the size limit.
pub fn import(command: ImportCommand) -> ExitCode {
    let ImportCommand::Asterisk(args) = command;
    let read = |path: &Path| -> Result<config::Config, String> {
        let name = path.display().to_string();
        let bytes = read_bounded(path).map_err(|error| format!("{name}: {error}"))?;
        config::parse(&name, &bytes).map_err(|error| error.to_string())
    };
    let files = (
        read(&args.queues),
        read(&args.pjsip),
        read(&args.extensions),
    );
    let (queues, pjsip, extensions) = match files {
        (Ok(queues), Ok(pjsip), Ok(extensions)) => (queues, pjsip, extensions),
        (queues, pjsip, extensions) => {
            for error in [queues.err(), pjsip.err(), extensions.err()]
                .into_iter()
                .flatten()
            {
                eprintln!("import asterisk: {error}");
            }
            return ExitCode::FAILURE;
        }
    };
    let options = asterisk::Options {
        name: args.name,
        time_zone: args.time_zone,
    };
    let imported = asterisk::import(&queues, &pjsip, &extensions, &options);
    print!("{}", imported.toml);
    for note in &imported.notes {
        eprintln!("{note}");
    }
    eprintln!(
        "import asterisk: {} note{} above: what was not translated, and the prompts to provide",
        imported.notes.len(),
        if imported.notes.len() == 1 { "" } else { "s" }
    );
    ExitCode::SUCCESS
}

/// The file's bytes, refusing one over the parser's limit before reading
/// it whole (a device or a huge file is not slurped).
fn read_bounded(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    let limit = u64::try_from(config::MAX_FILE_BYTES).unwrap_or(u64::MAX) + 1;
    file.take(limit).read_to_end(&mut bytes)?;
    Ok(bytes)
}
