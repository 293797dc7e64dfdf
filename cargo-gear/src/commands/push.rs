//! `cargo gear push`: the selected layers' content tags (parents first, only those the
//! registry lacks) and the selected gears' version tags, which are never overwritten with
//! other contents unless `--force`.

use crate::bases::{self, Missing};
use crate::cli::PushArgs;
use crate::error::CliError;
use crate::progress::Reporter;
use crate::request::Session;
use crate::schedule::{self, BuildOptions, VersionInRegistry};

/// Builds what is stale, then pushes.
pub fn run(session: &Session, args: &PushArgs) -> Result<(), CliError> {
    let registry = session.registry()?;
    let selected = session.select(&args.selection)?;
    let offline = session.frozen;
    bases::ensure(session, &selected, Missing::Add { offline })?;
    let plan = session.plan_to_build(&selected)?;
    let opts = BuildOptions::for_plan(&plan);
    let reporter = Reporter::new(false, session.out, session.build_paths().logs);
    session.runtime()?.block_on(async {
        let engine = session.engine().await?;
        schedule::build_locked(&engine, session, &plan, &opts, &reporter).await?;
        let out = &session.out;
        let creds = registry.credentials();
        let mut progress = |_: &crate::engine::PullProgress| {};

        // Content tags: content-addressed, so an existing one is the same image.
        for built in plan.layers.iter().filter_map(|l| l.built()) {
            let local = built.content_tag.as_str();
            let remote = registry.remote(local);
            if engine.registry_digest(&remote, creds.clone()).await?.is_some() {
                out.status("Present", format!("{remote} (already in the registry)"));
                continue;
            }
            let (repo, tag) = crate::engine::split_tag(&remote);
            engine.tag(local, repo, tag).await?;
            out.status("Pushing", &remote);
            let pushed = engine.push(&remote, creds.clone(), &mut progress).await;
            schedule::untag_remote(&engine, &remote).await;
            pushed?;
            out.status("Pushed", &remote);
        }

        // Version tags of the selected gears: Flywheel versions are immutable.
        let mut refused = Vec::new();
        for layer in plan.layers.iter().filter(|l| selected.contains(&l.index)) {
            let Some(built) = layer.built() else { continue };
            let Some(gear) = &built.gear else { continue };
            let (version_tag, content_tag) = (&gear.version_tag, &built.content_tag);
            let remote_version = registry.remote(version_tag);
            match schedule::version_in_registry(&engine, &registry, built, gear).await? {
                VersionInRegistry::Same => {
                    out.status("Present", format!("{remote_version} (already there, same digest)"));
                    continue;
                }
                VersionInRegistry::Other(d) if !args.force => {
                    out.error(format!(
                        "{remote_version} already exists in the registry with other contents ({d}); Flywheel gear versions are immutable"
                    ));
                    refused.push(layer.name.clone());
                    continue;
                }
                VersionInRegistry::Other(_) => {
                    out.warn(format!("overwriting {remote_version} (--force)"));
                }
                VersionInRegistry::Absent => {}
            }
            let (repo, tag) = crate::engine::split_tag(&remote_version);
            engine.tag(content_tag, repo, tag).await?;
            let pushed = engine.push(&remote_version, creds.clone(), &mut progress).await;
            schedule::untag_remote(&engine, &remote_version).await;
            pushed?;
            out.status("Pushed", &remote_version);
        }
        if refused.is_empty() {
            Ok(())
        } else {
            Err(CliError::CheckFailed {
                message: format!("refused to overwrite the version tag of {}", refused.join(", ")),
                help: "bump `version` in the gear's Gear.toml (and run `cargo gear manifest`), or pass --force to overwrite".into(),
            })
        }
    })
}
