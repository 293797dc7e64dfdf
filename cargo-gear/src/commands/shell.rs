//! `cargo gear shell`: an interactive shell in a gear's image with the run layout mounted,
//! and with `--mount-src` the gear's sources bind-mounted so host edits are live.

use std::collections::BTreeSet;
use std::io::IsTerminal;

use gear_spec::dockerfile::FLYWHEEL_DIR;
use gear_spec::plan::{BuiltImage, PlannedLayer};

use crate::cli::ShellArgs;
use crate::error::CliError;
use crate::local_run::{self, Prepared, RunDir};
use crate::progress::Reporter;
use crate::request::Session;
use crate::schedule::{self, BuildOptions};

/// bash when the image has it, sh otherwise.
const SHELL: &str = "if [ -x /bin/bash ]; then exec /bin/bash; else exec /bin/sh; fi";

/// Starts the shell; exits with the shell's exit code.
pub fn run(session: &Session, args: &ShellArgs, cwd: &std::path::Path) -> Result<(), CliError> {
    let Prepared {
        job,
        plan,
        layer,
        built,
        version,
        ..
    } = local_run::prepare_run(session, &args.job, cwd, true)?;
    let opts = BuildOptions::for_plan(&plan);
    let reporter = Reporter::new(false, session.out, session.build_paths().logs);
    let result = session.runtime()?.block_on(async {
        let engine = session.engine().await?;
        schedule::build_locked(&engine, session, &plan, &opts, &reporter).await?;
        let dir = RunDir::create(&session.ws.gear_dir(), &layer, &version, &job)?;
        let mut binds = dir.binds();
        if args.mount_src {
            binds.extend(source_binds(&layer, &built));
        }
        let env = local_run::environment(&session.build_paths().state, &layer, &built);
        let mut spec = local_run::spec(
            &layer,
            env,
            binds,
            local_run::container_name(&layer.name),
            false,
        );
        spec.entrypoint = Some(vec![]);
        spec.cmd = Some(vec!["/bin/sh".into(), "-c".into(), SHELL.into()]);
        spec.tty = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
        session.out.status(
            "Shell",
            format!(
                "in {} (run directory {})",
                layer.reference(),
                dir.path.display()
            ),
        );
        let _raw = spec.tty.then(raw::RawMode::enable).flatten();
        engine
            .run_interactive(
                spec,
                Box::new(tokio::io::stdin()),
                &mut local_run::print_output,
            )
            .await
            .map_err(CliError::from)
    });
    // Standard input may still be read by a blocking thread: the session's runtime does not
    // wait for it (see its Drop).
    match result? {
        0 => Ok(()),
        code => Err(CliError::GearFailed {
            gear: layer.name.clone(),
            code,
        }),
    }
}

/// `host:container` binds of the gear's copied top-level files and directories.
fn source_binds(layer: &PlannedLayer, built: &BuiltImage) -> Vec<String> {
    let tops: BTreeSet<&str> = built
        .files
        .iter()
        .filter_map(|f| f.digest.tar_path.strip_prefix("copy/"))
        .filter_map(|rel| rel.split('/').next())
        .collect();
    tops.into_iter()
        .map(|top| format!("{}:{FLYWHEEL_DIR}/{top}", layer.dir.join(top).display()))
        .collect()
}

/// The host terminal in raw mode while a terminal shell runs, restored on drop.
#[cfg(unix)]
mod raw {
    pub struct RawMode(libc::termios);

    impl RawMode {
        /// Raw mode on standard input, or None when it is not a terminal.
        pub fn enable() -> Option<RawMode> {
            // SAFETY: termios is plain data; tcgetattr fills it and reports failure by its result.
            unsafe {
                let mut t: libc::termios = std::mem::zeroed();
                if libc::tcgetattr(0, &mut t) != 0 {
                    return None;
                }
                let saved = t;
                libc::cfmakeraw(&mut t);
                (libc::tcsetattr(0, libc::TCSANOW, &t) == 0).then_some(RawMode(saved))
            }
        }
    }

    impl Drop for RawMode {
        fn drop(&mut self) {
            // SAFETY: restores the settings read in `enable`.
            unsafe {
                libc::tcsetattr(0, libc::TCSANOW, &self.0);
            }
        }
    }
}

#[cfg(not(unix))]
mod raw {
    pub struct RawMode;
    impl RawMode {
        pub fn enable() -> Option<RawMode> {
            None
        }
    }
}
