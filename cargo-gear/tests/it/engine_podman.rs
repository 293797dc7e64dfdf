//! Podman as the engine: the binary against `podman system service`'s Docker-compatible API
//! (the service `cargo xtask test` starts, xtask/src/podman.rs, holding the busybox fixture):
//! build, plan, push to the test registry (its lookups included: Podman's API has none of
//! its own, see `Engine::registry_digest`), and run, which some sandboxes refuse to Podman
//! ("error setting rlimits"): then only the run is skipped, with the reason printed.
//!
//! Run with `cargo xtask test -- --test it engine_podman::`.

use crate::e2e_registry::tags;
use crate::scratch::{self, BusyboxGear, PROBE_SAYS};
use crate::support;

use std::time::Duration;

use cargo_gear::engine::EngineAddress;

/// Any one command: a busybox build, run or push.
const TIMEOUT: Duration = Duration::from_secs(5 * 60);

#[test]
fn builds_plans_pushes_and_runs_on_podman() {
    let Some(host) = support::podman() else {
        return;
    };
    let Some(registry) = support::registry() else {
        return;
    };
    let mut ws = BusyboxGear::new("podman", vec![("DOCKER_HOST", host.clone().into())]);
    let engine = ws.connect(&EngineAddress::parse(&host, None).unwrap());
    assert!(engine.is_podman(), "{host} is Podman");

    // Build, then nothing to build.
    let built = ws.build(&[], TIMEOUT);
    built.assert_success();
    assert_eq!(built.counts(), [1, 1, 0, 0, 0], "{}", built.out.stderr);
    let plan = ws.plan(&[], TIMEOUT);
    assert_eq!(plan.stale(), Default::default(), "fresh after the build");
    let content_tag = plan.content_tag("probe").to_owned();
    assert!(
        ws.image(&content_tag).is_some(),
        "{content_tag} is in Podman"
    );
    let again = ws.build(&[], TIMEOUT);
    again.assert_success();
    assert_eq!(again.counts(), [0, 2, 0, 0, 0], "{}", again.out.stderr);

    // Push; the registry has both tags, and a second push finds them there.
    let prefix = format!("{}/{}", registry.open, ws.id);
    let push = |args: &[&str]| {
        let mut all = vec!["--registry", prefix.as_str(), "push"];
        all.extend_from_slice(args);
        ws.gear(&all, TIMEOUT)
    };
    let pushed = push(&[]);
    assert_eq!(pushed.code, Some(0), "{}", pushed.stderr);
    let remote_repo = format!("{}/{}", ws.id, ws.probe_repo());
    assert_eq!(
        tags(&registry.open, &remote_repo, None),
        scratch::names(&[plan.content_tag_name("probe"), "1.0.0"])
    );
    let present = push(&[]);
    assert_eq!(present.code, Some(0), "{}", present.stderr);
    let message = present.message();
    assert!(
        message.contains("(already in the registry)")
            && message.contains("1.0.0 (already there, same digest)"),
        "{message}"
    );

    // Without the local image, the plan finds the layer in the registry.
    assert!(ws.remove_image(&content_tag));
    let from_registry = ws.plan(&["--registry", &prefix, "--check-registry"], TIMEOUT);
    assert_eq!(from_registry.status("probe").0, "in-registry");
    assert!(
        ws.image(&content_tag).is_none(),
        "looking the registry up leaves no image behind"
    );

    // Other contents under the same version: refused, as on Docker.
    ws.change_program(&ws.id);
    let refused = push(&[]);
    assert_eq!(refused.code, Some(1), "{}", refused.stderr);
    assert!(
        refused
            .message()
            .contains("refused to overwrite the version tag of probe"),
        "{}",
        refused.stderr
    );

    // Run, where the machine lets Podman start containers.
    let ran = ws.gear(&["run", "-p", "probe"], TIMEOUT);
    if ran.code != Some(0) && ran.stderr.contains("error setting rlimit") {
        eprintln!(
            "note: skipping only the run on Podman: this machine refuses Podman's containers \
             their rlimits:\n{}",
            ran.stderr
        );
        return;
    }
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    let said = format!("{PROBE_SAYS} built-{}", ws.id);
    assert!(
        ran.stdout.contains(&said) || ran.stderr.contains(&said),
        "{ran:?}"
    );
}
